#!/usr/bin/env python3
"""What one routing decision costs on the gateway's path, against a base tree, in one run.

    python benchmarks/routing/decision_cost.py --base /tmp/route-base --base-name e4011af

Timed is ``RouterEngine.route(body)``, what the pre-call hook runs for a routed request:
the request view, the score, the policy's chain and checks, the evidence, the metrics and
the rewrite of the body. Bodies are one-turn chats of 200 and 2,000 characters from
``scoring_cost.py``'s texts (most score simple, some complex). Each tree runs in a process of
its own (``PYTHONPATH=<tree>``), and the trees take turns in short blocks of calls, so a
change of load on the machine hits both alike. CPU time of the calling thread, per call.

A base tree is any checkout of this project (e.g. ``git worktree add /tmp/route-base REV``)
with its C parts built in place (``python setup.py build_ext --inplace``); trees from before
the package had folders (``stratum_litellm.engine``) work too.
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
try:
    from stratum_litellm.gateway.engine import RouterEngine
    from stratum_litellm.config import parse_settings
except ImportError:  # a tree from before the package had folders
    from stratum_litellm.engine import RouterEngine
    from stratum_litellm.settings import parse_settings
engine = RouterEngine(parse_settings({"gpu": {"enabled": False}}))
texts, reasons = [], {}
for line in sys.stdin:
    command = json.loads(line)
    if "texts" in command:
        texts = command["texts"]
        for t in texts * 3:
            engine.route({"model": "gemma4-auto", "messages": [{"role": "user", "content": t}]})
        print("[]", flush=True)
        continue
    out, start = [], command["start"]
    for i in range(command["calls"]):
        body = {"model": "gemma4-auto", "messages": [{"role": "user", "content": texts[(start + i) % len(texts)]}]}
        c0 = time.thread_time_ns()
        decision = engine.route(body)
        out.append((time.thread_time_ns() - c0) / 1000)
        reasons[str(decision.reason)] = reasons.get(str(decision.reason), 0) + 1
    print(json.dumps(out), flush=True)
print(json.dumps(reasons), file=sys.stderr)
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--base", type=Path, required=True, help="the tree to compare with (its C parts built in place)")
    p.add_argument("--base-name", default="base")
    p.add_argument("--blocks", type=int, default=100)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    workers = [Worker(label, tree, WORKER, env={"STRATUM_PURE_PYTHON": "0"})
               for label, tree in (("this tree", ROOT), (args.base_name, args.base))]
    rng = random.Random(args.seed)
    print(f"RouterEngine.route per routed request, CPU microseconds ({args.blocks} alternating blocks per size; "
          f"load average {os.getloadavg()[0]:.1f} before)\n")
    print("| characters | tree | p50 | p99 | this tree / base (p50, p99) | samples |")
    print("|---:|---|---:|---:|---:|---:|")
    for size in (200, 2_000):
        texts = [realistic_text(size, rng) for _ in range(32)]
        for w in workers:
            w.ask({"texts": texts})
        samples: dict[str, list[float]] = {w.label: [] for w in workers}
        for block in range(args.blocks):
            for w in workers:
                samples[w.label] += w.ask({"calls": 50, "start": block * 50})
        ours, base = samples[workers[0].label], samples[workers[1].label]
        ratio = (f"{statistics.median(ours) / statistics.median(base):.2f}x, "
                 f"{percentile(ours, 0.99) / percentile(base, 0.99):.2f}x")
        for w in workers:
            values = samples[w.label]
            shown = ratio if w is workers[0] else ""
            print(f"| {size:,} | {w.label} | {statistics.median(values):,.1f} | {percentile(values, 0.99):,.1f} | "
                  f"{shown} | {len(values)} |")
    for w in workers:
        w.close()
    print(f"\nLoad average after: {os.getloadavg()[0]:.1f}. Reproduce: `python benchmarks/routing/decision_cost.py "
          f"--base {args.base} --base-name {args.base_name}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
