"""The latency SLA under a burst: a slow smart tier with few slots, many complex requests.

    .venv/bin/python benchmarks/routing/sla_burst.py

A discrete-event simulation on a virtual clock, so it is exact and repeatable: the smart
tier has ``--smart-slots`` slots and queues the rest (as llama-server does with ``-np``),
the fast tier serves everything at once (continuous batching, as vLLM does). Two routers
see the same burst of complex requests:

- stratum: this project's real Policy, Signals and LatencyTracker, fed by completions as
  the gateway's callbacks would feed them (time to first token, in-flight counts, the
  half-open SLA probe, ``max_in_flight`` set to the smart tier's slot count);
- total-EMA: complexity, then one EMA of *total* time compared with the SLA, updated only
  when a request completes, no in-flight count and no probing (the naive design a
  latency-aware router is measured against, written inside this benchmark).

Prints the share of requests each tier served and the p50/p95 time to first token.
"""

from __future__ import annotations

import argparse
import heapq
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import command  # noqa: E402

from stratum_litellm.routing.policy import Policy  # noqa: E402
from stratum_litellm.scoring.view import RequestView  # noqa: E402
from stratum_litellm.config import parse_settings  # noqa: E402
from stratum_litellm.signals.snapshot import Signals  # noqa: E402

COMPLEX = (
    "Prove rigorously that for every prime p greater than 3 the number p squared minus one is divisible "
    "by 24, then analyse step by step why the argument fails for composite numbers, compare it with a "
    "proof by modular arithmetic, and explain under which additional constraints the statement could be "
    "generalised to higher powers without assuming anything beyond elementary number theory."
)


class VirtualClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Tier:
    """A backend: ``slots`` requests at a time (None: unlimited), FIFO queue for the rest."""

    ttft_s: float
    total_s: float
    slots: int | None
    busy: int = 0
    queue: list[int] = field(default_factory=list)


@dataclass
class Result:
    tier: str
    ttft_s: float


def simulate(router: str, args: argparse.Namespace) -> list[Result]:
    clock = VirtualClock()
    tiers = {"fast": Tier(args.fast_ttft, args.fast_total, None),
             "smart": Tier(args.smart_ttft, args.smart_total, args.smart_slots)}
    settings = parse_settings({
        "gpu": {"enabled": False},
        "latency": {"sla_ms": args.sla_ms, "probe_interval_s": 10},
        "tiers": {"fast": {"model_group": "gemma4-fast"},
                  "smart": {"model_group": "gemma4-smart", "max_in_flight": args.smart_slots}},
    })
    signals = Signals(settings, clock=clock)
    policy = Policy(settings)
    view = RequestView.from_prompt(COMPLEX)
    total_ema_ms: float | None = None

    events: list[tuple[float, int, str, int]] = []  # (time, seq, kind, request)
    seq = 0

    def push(t: float, kind: str, rid: int) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, rid))

    for i in range(args.requests):
        push(i * args.spacing_s, "arrive", i)

    routed: dict[int, str] = {}
    arrived: dict[int, float] = {}
    started: dict[int, float] = {}
    results: dict[int, Result] = {}

    def start(rid: int, tier_name: str) -> None:
        tier = tiers[tier_name]
        tier.busy += 1
        started[rid] = clock.now
        results[rid] = Result(tier_name, clock.now - arrived[rid] + tier.ttft_s)
        push(clock.now + tier.total_s, "done", rid)

    while events:
        clock.now, _, kind, rid = heapq.heappop(events)
        if kind == "arrive":
            arrived[rid] = clock.now
            if router == "stratum":
                decision = policy.decide(view, "gemma4-auto", signals.snapshot())
                assert decision is not None
                tier_name = decision.tier
                signals.latency.begin(str(rid), tier_name, decision.probe)
            else:
                complex_enough = policy.scorer.score(view).value >= settings.complexity.threshold
                tier_name = "smart" if complex_enough and (total_ema_ms is None or total_ema_ms <= args.sla_ms) else "fast"
            routed[rid] = tier_name
            tier = tiers[tier_name]
            if tier.slots is None or tier.busy < tier.slots:
                start(rid, tier_name)
            else:
                tier.queue.append(rid)
        else:  # a request finished: feed back, free the slot, start the next queued one
            tier_name = routed[rid]
            tier = tiers[tier_name]
            total_ms = (clock.now - arrived[rid]) * 1000.0
            ttft_ms = results[rid].ttft_s * 1000.0
            if router == "stratum":
                signals.latency.observe_success(str(rid), tier_name, ttft_ms, total_ms)
            elif tier_name == "smart":
                total_ema_ms = total_ms if total_ema_ms is None else total_ema_ms + 0.2 * (total_ms - total_ema_ms)
            tier.busy -= 1
            if tier.queue:
                start(tier.queue.pop(0), tier_name)
    return [results[i] for i in range(args.requests)]


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18] if len(values) > 1 else values[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--spacing-s", type=float, default=0.05, help="time between arrivals")
    parser.add_argument("--smart-slots", type=int, default=2)
    parser.add_argument("--smart-ttft", type=float, default=0.8, help="smart tier prompt processing, s")
    parser.add_argument("--smart-total", type=float, default=6.0, help="smart tier whole answer, s")
    parser.add_argument("--fast-ttft", type=float, default=0.15)
    parser.add_argument("--fast-total", type=float, default=1.5)
    parser.add_argument("--sla-ms", type=float, default=2000.0)
    args = parser.parse_args()

    print(f"SLA burst: {args.requests} complex requests, {args.smart_slots} smart slots, SLA {args.sla_ms:.0f} ms "
          f"time to first token (command: {command(__file__)})\n")
    print("| router | smart share | fast share | p50 TTFT ms | p95 TTFT ms | p95 within SLA |")
    print("|---|---|---|---|---|---|")
    for router in ("stratum", "total-EMA"):
        results = simulate(router, args)
        ttfts = [r.ttft_s * 1000.0 for r in results]
        smart = sum(r.tier == "smart" for r in results) / len(results)
        print(f"| {router} | {smart:.0%} | {1 - smart:.0%} | {statistics.median(ttfts):.0f} | {p95(ttfts):.0f} | "
              f"{'yes' if p95(ttfts) <= args.sla_ms else 'no'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
