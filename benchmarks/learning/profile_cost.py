#!/usr/bin/env python3
"""Scoring cost per request of the profiles: the default one (with its learned part) against
the hand-made one (the scorer before profiles), a profile with many learned features, and
LiteLLM's complexity router, all in one process.

    .venv/bin/python benchmarks/learning/profile_cost.py                        # fits the large profile first (under a minute)
    .venv/bin/python benchmarks/learning/profile_cost.py --large /tmp/large.json --json /tmp/profile_cost.json
    .venv/bin/python benchmarks/learning/profile_cost.py --quick                # fewer samples

The path timed is what the gateway runs per request, as in benchmarks/scoring/scoring_cost.py (whose
texts, percentiles and LiteLLM set-up this reuses): request body -> RequestView ->
Scorer.score, with the C parts where built (scan engine, measurements, score kernel, and
``_text.c`` for the learned part). Contenders, interleaved call by call (so load on the
machine hits all alike, and each call finds the caches as the others left them), CPU time of
the calling thread:

- ``handmade``: ``Scorer(profile=builtin("handmade"))``, dimensions only (today's scorer);
- ``default``: ``Scorer(profile=builtin("default"))``, the same plus its learned part
  (10,000 hashed words and word pairs in a 2**18 table);
- ``large``: a profile fitted on the whole dev set at strength 1.0 with up to 20,000 learned
  features (``fit(..., strengths=[1.0])``; ``--large FILE`` reads it from a file, and writes
  it there when the file does not exist yet): the table is dense, one lookup per feature of
  the request, so its cost should not depend on how many features the profile holds;
- ``learned part only``: ``TextPart.contribution(last turn)`` of the default profile, what
  the learned part adds by itself;
- ``LiteLLM``: ``ComplexityRouter.classify(prompt)``.

Texts of 200 and 2,000 characters (``--sizes`` for others). The issue's target: the default
profile at least 50x cheaper than LiteLLM's router at the median.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
import timeit
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: the harness
from harness import ROOT, interleaved, percentile  # noqa: E402
from harness.texts import litellm_classifier, realistic_text  # noqa: E402
from stratum_litellm.scoring import measure, text  # noqa: E402
from stratum_litellm.scoring.profile import builtin, load_profile  # noqa: E402
from stratum_litellm.scoring.scan import ENGINE  # noqa: E402
from stratum_litellm.scoring.scorer import KERNEL, Scorer  # noqa: E402
from stratum_litellm.scoring.view import RequestView  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "routellm_dev.jsonl"


def large_profile(path: Path | None, data: Path) -> Any:
    """A profile with as many learned features as a fit keeps (strength 1.0, whole dev set)."""
    if path is not None and path.exists():
        return load_profile(str(path))
    from stratum_litellm.learning import fit as learning
    from stratum_litellm.learning.labels import read_file

    labels = list(read_file(data))
    handmade = builtin("handmade")
    learning._libraries()  # numpy loads on one BLAS thread, as `stratum fit` runs (see learning_curve.py)
    started = time.perf_counter()
    result = learning.fit(labels, handmade, handmade, name="large", strengths=[1.0])
    print(f"(fitted the large profile on {len(labels):,} labels in {time.perf_counter() - started:.0f} s)",
          file=sys.stderr)
    if path is not None:
        path.write_text(json.dumps(result.profile.to_json()))
        return load_profile(str(path))
    return result.profile


def contenders(large: Any) -> dict[str, tuple[Callable[[Any], Any], str]]:
    """name -> (call, what it takes: "body", "text")."""
    scorers = {"handmade": Scorer(profile=builtin("handmade")), "default": Scorer(profile=builtin("default")),
               "large": Scorer(profile=large)}
    out: dict[str, tuple[Callable[[Any], Any], str]] = {}
    for name, s in scorers.items():
        out[name] = ((lambda sc: lambda body: sc.score(RequestView.from_request(body)))(s), "body")
    part = builtin("default").text
    assert part is not None
    out["learned part only"] = (part.contribution, "text")
    out["LiteLLM"] = (litellm_classifier(), "text")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[200, 2_000])
    p.add_argument("--quick", action="store_true", help="fewer samples (a smoke run)")
    p.add_argument("--large", type=Path, help="the large profile's file (read, or written after fitting it)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labels the large profile is fitted on")
    p.add_argument("--json", type=Path, metavar="OUT")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args(argv)

    large = large_profile(args.large, args.data)
    named = contenders(large)
    rng = random.Random(args.seed)
    plan = {200: (3000, 1000), 2_000: (6000, 1200)}
    load_before = os.getloadavg()
    results: dict[int, dict[str, list[tuple[float, float]]]] = {}
    for size in args.sizes:
        n_ours, n_theirs = plan.get(size, (2000, 200))
        if args.quick:
            n_ours, n_theirs = max(50, n_ours // 10), max(10, n_theirs // 10)
        texts = [realistic_text(size, rng) for _ in range(32)]
        bodies = [{"model": "gemma4-auto", "messages": [{"role": "user", "content": t}]} for t in texts]
        for name, (call, takes) in named.items():  # warm-up
            for t, b in zip(texts, bodies):
                call(b if takes == "body" else t)
        budget = {name: (n_theirs if name == "LiteLLM" else n_ours) for name in named}
        gc.collect()
        results[size] = interleaved(
            {name: (call, (lambda i, given=bodies if takes == "body" else texts: given[i % 32]))
             for name, (call, takes) in named.items()}, n_ours, budget)

    loop_us = min(timeit.repeat("for i in range(1000): pass", number=1000, repeat=5)) / 1000 * 1e6
    features = {"handmade": 0, "default": len(builtin("default").text.indices),  # type: ignore[union-attr]
                "large": len(large.text.indices) if large.text else 0}
    print(f"Scoring cost per request by profile, CPU time of the calling thread, microseconds, interleaved call by "
          f"call ({platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs shared with "
          f"other work, load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after; an empty "
          f"1000-iteration loop takes {loop_us:.1f} us; scan engine {ENGINE}, measurements {measure.MEASURE_ENGINE}, "
          f"kernel {KERNEL}, learned part {text.ENGINE}; learned features: default {features['default']:,}, "
          f"large {features['large']:,})\n")
    print("| chars | handmade median | handmade p99 | default median | default p99 | large median | large p99 "
          "| learned part only median | LiteLLM median | LiteLLM p99 | default / handmade (median, p99) "
          "| large / default (median, p99) | LiteLLM / default (median, p99) | samples (ours / LiteLLM) |")
    print("|---:|" + "---:|" * 13)
    summary = {}
    for size, samples in results.items():
        st = {}
        for name, values in samples.items():
            cpu = [v[1] for v in values]
            st[name] = (statistics.median(cpu), percentile(cpu, 0.99))
        h, d, lg, part, ll = st["handmade"], st["default"], st["large"], st["learned part only"], st["LiteLLM"]
        summary[size] = {name: {"median_us": m, "p99_us": q} for name, (m, q) in st.items()}
        summary[size]["ratios"] = {"default/handmade": (d[0] / h[0], d[1] / h[1]), "large/default": (lg[0] / d[0], lg[1] / d[1]),
                                   "LiteLLM/default": (ll[0] / d[0], ll[1] / d[1])}
        print(f"| {size:,} | {h[0]:,.1f} | {h[1]:,.1f} | {d[0]:,.1f} | {d[1]:,.1f} | {lg[0]:,.1f} | {lg[1]:,.1f} | "
              f"{part[0]:,.1f} | {ll[0]:,.1f} | {ll[1]:,.1f} | {d[0] / h[0]:.2f}x, {d[1] / h[1]:.2f}x | "
              f"{lg[0] / d[0]:.2f}x, {lg[1] / d[1]:.2f}x | {ll[0] / d[0]:,.0f}x, {ll[1] / d[1]:,.0f}x | "
              f"{len(samples['default'])} / {len(samples['LiteLLM'])} |")
    print("\nTarget: LiteLLM / default at least 50x at the median: "
          + ", ".join(f"{s:,} chars {'met' if v['ratios']['LiteLLM/default'][0] >= 50 else 'NOT met'} "
                      f"({v['ratios']['LiteLLM/default'][0]:,.1f}x)" for s, v in summary.items()))
    if args.json:
        args.json.write_text(json.dumps({"load_before": load_before, "features": features,
                                         "sizes": {str(k): v for k, v in summary.items()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
