#!/usr/bin/env python3
"""Cost per request of the stratum scorer vs LiteLLM's built-in complexity router.

    python benchmarks/scoring_cost.py            # prints a markdown table
    python benchmarks/scoring_cost.py --quick    # fewer samples

Both run in this process, on the same texts, interleaved call by call (so load on the
machine hits both alike). Texts are realistic mixes of prose, code and math at 200,
2,000, 20,000 and 200,000 characters, built from a fixed seed. The stratum path is what
the gateway runs per request: request body -> RequestView -> Scorer.score. The LiteLLM
path is ``ComplexityRouter.classify(prompt)``, its heuristic scorer (no LLM call).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stratum_litellm.request_view import RequestView  # noqa: E402
from stratum_litellm.scoring import Scorer  # noqa: E402

SIZES = (200, 2_000, 20_000, 200_000)

PROSE = [
    "The committee reviewed the proposal in detail and asked for a clearer account of the risks before approving the budget.",
    "Explain why the Roman Republic gave way to the Empire, and compare the roles of Caesar and Augustus in that change.",
    "Our team migrated the billing service last spring; since then, latency has dropped but the error rate doubled at peak hours.",
    "Please summarise the attached meeting notes in five bullet points and list every decision that still needs an owner.",
    "A patient presents with fatigue and shortness of breath; what are the most likely causes, and which tests come first?",
    "Write a short, friendly reply thanking the customer for the feedback and promising a fix in the next release.",
    "If the court finds that the contract was never formed, the plaintiff cannot recover damages for breach, except in restitution.",
]
CODE = [
    "def moving_average(xs, k):\n    out = []\n    for i in range(len(xs) - k + 1):\n        out.append(sum(xs[i:i + k]) / k)\n    return out\n",
    "const fetchUser = async (id) => {\n  const res = await fetch(`/api/users/${id}`);\n  if (!res.ok) throw new Error(res.status);\n  return res.json();\n};\n",
    "SELECT u.name, COUNT(o.id) AS orders\nFROM users u LEFT JOIN orders o ON o.user_id = u.id\nGROUP BY u.name ORDER BY orders DESC;\n",
    "fn parse(line: &str) -> Option<(u32, u32)> {\n    let mut it = line.split(',');\n    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))\n}\n",
    "#include <stdio.h>\nint main(void) {\n    for (int i = 0; i < 10; i++) printf(\"%d\\n\", i * i);\n    return 0;\n}\n",
]
MATH = [
    "Solve for x: 3x + 7 = 22, then compute x^2 - 4x + 4 and explain each step.",
    "Let f(x) = x^3 - 6x^2 + 11x - 6. Find all roots and prove that f has no other real zeros.",
    "A train travels 120 km in 1.5 hours, then 80 km at twice the speed. What is its average speed in km/h?",
    "Show that \\sum_{k=1}^{n} k = n(n+1)/2 by induction, and give the value for n = 100.",
]


def realistic_text(size: int, rng: random.Random) -> str:
    parts: list[str] = []
    total = 0
    while total < size:
        kind = rng.random()
        piece = rng.choice(PROSE if kind < 0.55 else CODE if kind < 0.8 else MATH)
        parts.append(piece)
        total += len(piece) + 1
    return "\n".join(parts)[:size]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def litellm_classifier():  # type: ignore[no-untyped-def]
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    from litellm.router_strategy.complexity_router.complexity_router import ComplexityRouter

    tiers = {"SIMPLE": "fast", "MEDIUM": "fast", "COMPLEX": "smart", "REASONING": "smart"}
    router = ComplexityRouter(model_name="auto", litellm_router_instance=None, complexity_router_config={"tiers": tiers})
    return router.classify


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer samples (for a smoke run)")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    classify = litellm_classifier()
    scorer = Scorer()
    rng = random.Random(args.seed)
    # Samples per size (ours, LiteLLM): LiteLLM is linear in the text and slow on big ones.
    plan = {200: (3000, 1000), 2_000: (3000, 600), 20_000: (1000, 60), 200_000: (300, 12)}
    if args.quick:
        plan = {k: (max(50, a // 10), max(5, b // 10)) for k, (a, b) in plan.items()}

    load_before = os.getloadavg()
    rows = []
    for size in SIZES:
        n_ours, n_theirs = plan[size]
        texts = [realistic_text(size, rng) for _ in range(32)]
        bodies = [{"model": "gemma4-auto", "messages": [{"role": "user", "content": t}]} for t in texts]
        for body, text in zip(bodies, texts):  # warm up both, and the caches of both
            scorer.score(RequestView.from_request(body))
            classify(text)
        ours: list[tuple[float, float]] = []  # (wall us, cpu us)
        theirs: list[tuple[float, float]] = []
        gc.collect()
        for i in range(n_ours):
            body, text = bodies[i % len(bodies)], texts[i % len(texts)]
            c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
            scorer.score(RequestView.from_request(body))
            t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
            ours.append(((t1 - t0) / 1000, (c1 - c0) / 1000))
            if i * n_theirs // n_ours != (i + 1) * n_theirs // n_ours:  # interleaved, spread evenly
                c0, t0 = time.thread_time_ns(), time.perf_counter_ns()
                classify(text)
                t1, c1 = time.perf_counter_ns(), time.thread_time_ns()
                theirs.append(((t1 - t0) / 1000, (c1 - c0) / 1000))
        rows.append((size, ours, theirs))

    loop_ns = min(timeit.repeat("for i in range(1000): pass", number=1000, repeat=5)) / 1000 * 1e6
    print(f"Scoring cost per request, microseconds ({platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; "
          f"machine speed: an empty 1000-iteration loop takes {loop_ns:.1f} us)\n")
    for title, k in (("CPU time of the calling thread (what the code costs)", 1),
                     ("Wall-clock time (includes being descheduled by other processes)", 0)):
        print(f"{title}:\n")
        print("| chars | stratum median | stratum p99 | LiteLLM median | LiteLLM p99 | speed-up (median) | speed-up (p99) | samples (stratum / LiteLLM) |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size, ours, theirs in rows:
            o = [x[k] for x in ours]
            t = [x[k] for x in theirs]
            om, o99 = statistics.median(o), percentile(o, 0.99)
            tm, t99 = statistics.median(t), percentile(t, 0.99)
            print(f"| {size:,} | {om:,.1f} | {o99:,.1f} | {tm:,.1f} | {t99:,.1f} | {tm / om:,.0f}x | {t99 / o99:,.0f}x "
                  f"| {len(o)} / {len(t)} |")
        print()
    print(f"Reproduce: `{Path(sys.executable).name} benchmarks/scoring_cost.py" + (" --quick" if args.quick else "") + "`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
