#!/usr/bin/env python3
"""What a decision costs on a ladder of five tiers against the two-tier default, in one run.

    python benchmarks/routing/ladder_cost.py [--calls 20000]

Timed is ``RouterEngine.route(body)``, what the pre-call hook runs for a routed request,
for three engines in one process, taking turns in short blocks so a change of load on the
machine hits all alike (CPU time of the calling thread, per call):

- ``2 tiers``: the shipped default (fast, smart at 0.65);
- ``5 tiers``: four local tiers (entry scores 0.1 / 0.2 / 0.3) and an overflow tier with a
  budget, every rung with room, so most requests climb to the top local tier;
- ``5 tiers, held``: the same ladder with the three tiers above the first unhealthy and
  the overflow budget spent, so a request that wants the top rung is checked on every
  rung on its way down to the first (the most a decision can walk).

Bodies are one-turn chats of 200 and 2,000 characters from ``scoring_cost.py``'s texts.
Figures are ratios against ``2 tiers`` in the same run: absolute times on a shared machine
swing between runs.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import percentile  # noqa: E402
from harness.texts import realistic_text  # noqa: E402

from stratum_litellm.config import parse_settings  # noqa: E402
from stratum_litellm.gateway.engine import RouterEngine  # noqa: E402

FIVE = {
    "gpu": {"enabled": False},
    "latency": {"failure_threshold": 1, "cooldown_s": 3600},
    "tiers": {
        "t0": {"model_group": "g0"},
        "t1": {"model_group": "g1", "entry_score": 0.1},
        "t2": {"model_group": "g2", "entry_score": 0.2},
        "t3": {"model_group": "g3", "entry_score": 0.3},
        "cloud": {"model_group": "hosted", "overflow": True, "budget": {"requests_per_hour": 1}},
    },
}


def engines() -> dict[str, RouterEngine]:
    two = RouterEngine(parse_settings({"gpu": {"enabled": False}}))
    five = RouterEngine(parse_settings(FIVE))
    held = RouterEngine(parse_settings(FIVE))
    for group in ("g1", "g2", "g3"):
        held.observe({"standard_logging_object": {"model_group": group}}, 0.0, 1.0, ok=False)
    held.signals.budget.charge_request()  # type: ignore[union-attr]
    return {"2 tiers": two, "5 tiers": five, "5 tiers, held": held}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per engine")
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()
    rng = random.Random(7)
    texts = [realistic_text(size, rng) for size in (200, 2000) for _ in range(50)]
    timed: dict[str, list[float]] = {}
    tiers: dict[str, dict[str, int]] = {}
    runs = engines()
    for name, engine in runs.items():  # warm-up, and where requests go
        timed[name], tiers[name] = [], {}
        for text in texts:
            d = engine.route({"model": "gemma4-auto", "messages": [{"role": "user", "content": text}]})
            assert d is not None
            tiers[name][d.tier] = tiers[name].get(d.tier, 0) + 1
    start = 0
    while start < args.calls:
        for name, engine in runs.items():
            out = timed[name]
            for i in range(start, start + args.block):
                body: dict[str, Any] = {"model": "gemma4-auto",
                                        "messages": [{"role": "user", "content": texts[i % len(texts)]}]}
                c0 = time.thread_time_ns()
                engine.route(body)
                out.append((time.thread_time_ns() - c0) / 1000)
        start += args.block
    base = statistics.median(timed["2 tiers"])
    print(f"{args.calls} calls per engine, bodies of 200 and 2,000 characters\n")
    print("| engine | median / 2 tiers | p99 / 2 tiers' p99 | tiers served (of 100 bodies) |")
    print("|---|---|---|---|")
    base_p99 = percentile(timed["2 tiers"], 0.99)
    for name, values in timed.items():
        served = ", ".join(f"{t} {n}" for t, n in sorted(tiers[name].items()))
        print(f"| {name} | {statistics.median(values) / base:.2f} | {percentile(values, 0.99) / base_p99:.2f} | {served} |")
    print(f"\n(2 tiers: median {base:.1f} us, p99 {base_p99:.1f} us on this machine, this run)")
    for engine in runs.values():
        engine.close()


if __name__ == "__main__":
    main()
