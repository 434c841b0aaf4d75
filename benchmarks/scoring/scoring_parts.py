#!/usr/bin/env python3
"""Does each C part of the scorer pay for itself on the whole request path? And against a base tree?

    python benchmarks/scoring/scoring_parts.py                          # this tree: every C part, each off, none
    python benchmarks/scoring/scoring_parts.py --base /tmp/scoring-base # and another tree (e.g. a git worktree)

What is timed is what the gateway runs per request: ``RequestView.from_request(body)`` then
``Scorer.score(view)``, on the texts of ``scoring_cost.py`` (a one-turn chat of 200 and
2,000 characters). Each configuration runs in a process of its own (``PYTHONPATH=<tree>``,
``STRATUM_PURE_PYTHON=<parts off>``), LiteLLM's complexity router in one more, and all of
them take turns in short blocks of calls in the same run, so a change of load on the machine
hits all alike. Times are CPU time of the calling thread, per call. A base tree's C parts
must be built in place (``python setup.py build_ext --inplace``); for a tree that scores a
one-turn request in a single C call, its runs without that call are added (a benchmark-only hook).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import ROOT, percentile  # noqa: E402
from harness.texts import realistic_text  # noqa: E402
from harness.worker import Worker  # noqa: E402

WORKER = r"""
import json, sys, time
hook, litellm = sys.argv[1], sys.argv[2] == "litellm"
if litellm:
    sys.path.insert(0, sys.argv[3])
    from harness.texts import litellm_classifier
    classify = litellm_classifier()
    call = lambda text: classify(text)
else:
    from stratum_litellm.scoring.view import RequestView
    from stratum_litellm.scoring import scorer as scoring
    if hook == "one-call":  # a tree scoring one plain turn in one C call: that call left out
        scoring._ONE_TURN = None
    scorer = scoring.Scorer()
    def call(text):
        return scorer.score(RequestView.from_request({"model": "m", "messages": [{"role": "user", "content": text}]}))
texts = []
for line in sys.stdin:
    command = json.loads(line)
    if "texts" in command:
        texts = command["texts"]
        for t in texts * 3:
            call(t)
        print("[]", flush=True)
        continue
    out, start = [], command["start"]
    for i in range(command["calls"]):
        text = texts[(start + i) % len(texts)]
        c0 = time.thread_time_ns()
        call(text)
        out.append((time.thread_time_ns() - c0) / 1000)
    print(json.dumps(out), flush=True)
"""


def worker(label: str, tree: Path, switch: str, hook: str = "", litellm: bool = False) -> Worker:
    return Worker(label, tree, WORKER, (hook or "-", "litellm" if litellm else "stratum", str(Path(__file__).resolve().parents[1])),
                  {"STRATUM_PURE_PYTHON": switch})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, help="another tree to run alongside (its C parts built in place)")
    p.add_argument("--base-name", default="base")
    p.add_argument("--quick", action="store_true", help="fewer samples (for a smoke run)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    workers = [worker("this tree, every C part", ROOT, "0"),
               worker("this tree, score kernel in Python", ROOT, "kernel"),
               worker("this tree, measurements in Python", ROOT, "measure"),
               worker("this tree, scan (and so measurements) in Python", ROOT, "scan"),
               worker("this tree, pure Python", ROOT, "1")]
    if args.base:
        workers.append(worker(f"{args.base_name}, every C part", args.base, "0"))
        if "_ONE_TURN" in (args.base / "stratum_litellm/scoring/scorer.py").read_text():
            workers.append(worker(f"{args.base_name}, without its one-call C path", args.base, "0", hook="one-call"))
        workers.append(worker(f"{args.base_name}, pure Python", args.base, "1"))
    litellm = worker("LiteLLM complexity router", ROOT, "0", litellm=True)
    rng = random.Random(args.seed)
    blocks = 10 if args.quick else 100
    plan = {200: (60, 20), 2_000: (60, 8)}  # calls per block: each stratum configuration, LiteLLM
    print(f"Request path cost, CPU microseconds per call ({blocks} alternating blocks per size; "
          f"load average {os.getloadavg()[0]:.1f} before)\n")
    for size, (ours, theirs) in plan.items():
        texts = [realistic_text(size, rng) for _ in range(32)]
        for w in (*workers, litellm):
            w.ask({"texts": texts})
        samples: dict[str, list[float]] = {w.label: [] for w in (*workers, litellm)}
        for block in range(blocks):
            for w in workers:
                samples[w.label] += w.ask({"calls": ours, "start": block * ours})
            samples[litellm.label] += litellm.ask({"calls": theirs, "start": block * theirs})
        theirs_p50 = statistics.median(samples[litellm.label])
        theirs_p99 = percentile(samples[litellm.label], 0.99)
        ref = workers[0].label
        ref_p50, ref_p99 = statistics.median(samples[ref]), percentile(samples[ref], 0.99)
        print(f"{size:,} characters:\n")
        print("| configuration | p50 | p99 | LiteLLM / it (p50, p99) | it / every C part (p50, p99) | samples |")
        print("|---|---:|---:|---:|---:|---:|")
        for label, values in samples.items():
            p50, p99 = statistics.median(values), percentile(values, 0.99)
            vs_ref = "" if label == litellm.label else f"{p50 / ref_p50:.2f}x, {p99 / ref_p99:.2f}x"
            vs_them = "" if label == litellm.label else f"{theirs_p50 / p50:,.0f}x, {theirs_p99 / p99:,.0f}x"
            print(f"| {label} | {p50:,.1f} | {p99:,.1f} | {vs_them} | {vs_ref} | {len(values)} |")
        print()
    for w in (*workers, litellm):
        w.close()
    print(f"Load average after: {os.getloadavg()[0]:.1f}. Reproduce: `python benchmarks/scoring/scoring_parts.py"
          + (f" --base {args.base} --base-name {args.base_name}" if args.base else "")
          + (" --quick" if args.quick else "") + "`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
