#!/usr/bin/env python3
"""Cost per request of the stratum scorer vs LiteLLM's built-in complexity router.

    python benchmarks/scoring/scoring_cost.py            # prints a markdown table
    python benchmarks/scoring/scoring_cost.py --quick    # fewer samples

All run in this process, on the same texts: interleaved call by call (so load on the
machine hits all alike, and each call finds the caches as the others left them), then back
to back in alternating blocks (warm caches). Texts are realistic mixes of prose, code and
math at 200, 2,000, 20,000 and 200,000 characters, built from a fixed seed. The stratum
path is what the gateway runs per request: request body -> RequestView -> Scorer.score,
with its C parts (scan engine and measurements, when built) and again in pure Python. The LiteLLM path
is ``ComplexityRouter.classify(prompt)``, its heuristic scorer (no LLM call).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import command, percentile, timed  # noqa: E402
from harness import interleaved as interleaved_calls  # noqa: E402
from harness.texts import litellm_classifier, realistic_text  # noqa: E402

from stratum_litellm.scoring import measure, scorer  # noqa: E402
from stratum_litellm.scoring.scan import ENGINE, PyScanner  # noqa: E402
from stratum_litellm.scoring.scorer import Scorer  # noqa: E402
from stratum_litellm.scoring.view import RequestView  # noqa: E402

SIZES = (200, 2_000, 20_000, 200_000)

def contenders():  # type: ignore[no-untyped-def]
    """name -> (call, takes the request body (True) or the prompt (False))."""
    the_scorer = Scorer()
    fast = measure._SCANNER, scorer.measure
    python = PyScanner(**measure._SCANNER_SPEC), measure.measure_python

    def stratum(body):  # type: ignore[no-untyped-def]
        return the_scorer.score(RequestView.from_request(body))

    def stratum_python(body):  # type: ignore[no-untyped-def]
        # The same scorer with the pure-Python scan engine and measurements (what an install
        # without a C compiler runs), swapped in for this call only.
        measure._SCANNER, scorer.measure = python
        try:
            return the_scorer.score(RequestView.from_request(body))
        finally:
            measure._SCANNER, scorer.measure = fast

    native = ENGINE == "c" and measure.MEASURE_ENGINE == "c"
    out = {f"stratum ({'C' if native else 'Python'})": (stratum, True)}
    if native:
        out["stratum (pure Python)"] = (stratum_python, True)
    out["LiteLLM"] = (litellm_classifier(), False)
    return out


def table(title: str, rows: list[tuple[int, dict[str, list[tuple[float, float]]]]], k: int) -> None:
    names = list(rows[0][1])
    base = names[-1]  # LiteLLM
    print(f"{title}:\n")
    head = " | ".join(f"{n} median | {n} p99" for n in names)
    ratios = " | ".join(f"{n}: LiteLLM / it (median, p99)" for n in names[:-1])
    print(f"| chars | {head} | {ratios} | samples |")
    print("|---:|" + "---:|" * (2 * len(names) + len(names) - 1) + "---:|")
    for size, samples in rows:
        cells, stats = [], {}
        for n in names:
            values = [x[k] for x in samples[n]]
            stats[n] = (statistics.median(values), percentile(values, 0.99))
            cells.append(f"{stats[n][0]:,.1f} | {stats[n][1]:,.1f}")
        tm, t99 = stats[base]
        speed = [f"{tm / stats[n][0]:,.0f}x, {t99 / stats[n][1]:,.0f}x" for n in names[:-1]]
        counts = " / ".join(str(len(samples[n])) for n in names)
        print(f"| {size:,} | " + " | ".join(cells) + " | " + " | ".join(speed) + f" | {counts} |")
    print()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer samples (for a smoke run)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    named = contenders()
    rng = random.Random(args.seed)
    # Samples per size (each stratum engine, LiteLLM): LiteLLM is linear in the text and slow on big ones.
    # 2,000 characters, where the p99 target is, gets the most samples: a p99 of 6,000 rests on 60.
    plan = {200: (3000, 1000), 2_000: (6000, 1200), 20_000: (1000, 60), 200_000: (300, 12)}
    if args.quick:
        plan = {k: (max(50, a // 10), max(5, b // 10)) for k, (a, b) in plan.items()}

    load_before = os.getloadavg()
    interleaved, back_to_back = [], []
    for size in SIZES:
        n_ours, n_theirs = plan[size]
        texts = [realistic_text(size, rng) for _ in range(32)]
        bodies = [{"model": "gemma4-auto", "messages": [{"role": "user", "content": t}]} for t in texts]
        args_of = {name: (bodies if takes_body else texts) for name, (_, takes_body) in named.items()}
        for name, (call, _) in named.items():  # warm up every contender and its caches
            for a in args_of[name]:
                call(a)
        budget = {name: (n_theirs if name == "LiteLLM" else n_ours) for name in named}
        # 1. Interleaved call by call, spread evenly: load on the machine hits all alike, and
        #    each call finds the caches as the other contenders left them (as in a gateway,
        #    where much else runs between two requests).
        gc.collect()
        samples = interleaved_calls({name: (call, (lambda i, given=args_of[name]: given[i % 32]))
                                     for name, (call, _) in named.items()}, n_ours, budget)
        interleaved.append((size, samples))
        # 2. Back to back: each contender alone for a block of calls (warm caches), the
        #    blocks alternating so that a change of load hits every contender.
        samples = {name: [] for name in named}
        gc.collect()
        for block in range(10):
            for name, (call, _) in named.items():
                for i in range(budget[name] // 10 or 1):
                    samples[name].append(timed(call, args_of[name][(block + i) % 32]))
        back_to_back.append((size, samples))

    loop_ns = min(timeit.repeat("for i in range(1000): pass", number=1000, repeat=5)) / 1000 * 1e6
    print(f"Scoring cost per request, microseconds ({platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; "
          f"machine speed: an empty 1000-iteration loop takes {loop_ns:.1f} us; "
          f"scan engine: {ENGINE}, measurements: {measure.MEASURE_ENGINE})\n")
    table("Interleaved call by call, CPU time of the calling thread", interleaved, 1)
    table("Interleaved call by call, wall-clock time (includes being descheduled)", interleaved, 0)
    table("Back to back (warm caches), CPU time of the calling thread", back_to_back, 1)
    print(f"Reproduce: `{command(__file__, argv)}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
