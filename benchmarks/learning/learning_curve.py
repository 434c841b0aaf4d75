#!/usr/bin/env python3
"""Held-out routing quality of a fitted profile against the number of labels it was fitted on.

    .venv/bin/python benchmarks/learning/learning_curve.py                         # sizes 50 .. 2,000, 5-11 minutes here
    .venv/bin/python benchmarks/learning/learning_curve.py --json /tmp/curve.json  # also the figures of every fit
    .venv/bin/python benchmarks/learning/learning_curve.py --check 200             # one draw fitted with OpenBLAS on 2 threads and on 1

Cross-validation on the labelled dev prompts (../shared/eval/routellm_dev.jsonl): for each of
5 seeds the rows are cut into two halves by sha256 of ``f"{seed}/{id}"`` (as
scripts/fit_profile.py cuts them), and each half is held out in turn (10 repeats). For each
size, ``size`` labels are drawn at random (seeded) from the training half and a profile is
fitted with ``stratum_litellm.learning.fit.fit(labels, current=handmade, base=handmade)``
(what ``stratum fit`` runs; its own internal cross-validation picks the strength); a draw
with fewer than 10 of one verdict is refused by the fit (LabelsError) and drawn again. The
new profile and the hand-made one are then measured on the held-out half: the harness's
APGR (routing_eval.evaluate_all: per benchmark and mixed, benchmarks weighted equally) and
the pooled AUROC of ``needs_strong`` (every held-out row weighing one).

Two things to keep in mind when reading the figures:

- the hand-made profile (data/weights.json) was itself fitted on all of these prompts, by
  scripts/fit_scorer.py, so its "held-out" figures are optimistic: it has seen the
  held-out half;
- a deployment's labels come from one kind of traffic, while this set mixes three
  benchmarks (GSM8K 402, MMLU 4,257, MT-Bench 20 prompts): a random draw of 200 labels has
  about 2 MT-Bench prompts, and each held-out half about 10, so the MT-Bench column is noise.

BLAS threads: ``fit`` solves with scipy's L-BFGS-B (over the design's non-empty columns:
thousands of hashed words and word pairs), whose ``setulb`` makes BLAS calls that OpenBLAS
splits over its threads (2 here). On this shared 2-core machine that made ``fit`` 13-70x
slower in wall time than on one thread. ``stratum fit`` runs OpenBLAS on one thread; so does
this script (``OPENBLAS_NUM_THREADS=1`` before numpy loads). ``--check N`` fits one draw both
ways in one run, twice, and prints the times and the differences (it needs threadpoolctl,
``pip install threadpoolctl``, to switch the threads within one process).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

if "--check" not in sys.argv:  # one BLAS thread, as `stratum fit` runs (see the docstring)
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from fit_scorer import load_harness  # noqa: E402
from stratum_litellm.learning import fit as learning  # noqa: E402
from stratum_litellm.learning.labels import LabelsError, read_file  # noqa: E402
from stratum_litellm.scoring.profile import builtin  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "routellm_dev.jsonl"
SIZES = (50, 100, 200, 500, 1000, 2000)
SEEDS = (0, 1, 2, 3, 4)
GROUPS = ("gsm8k", "mmlu", "mt_bench", "mixed")


def half(seed: int, row_id: str) -> int:
    return int(hashlib.sha256(f"{seed}/{row_id}".encode()).hexdigest()[:8], 16) % 2


def blas_threads(n: int | None) -> Any:
    """A context with OpenBLAS (numpy's and scipy's) on ``n`` threads (None: as it is)."""
    if not n:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the process already runs one thread unless --check (top of the file)
        return contextlib.nullcontext()
    learning._libraries()  # numpy and scipy loaded first, so their OpenBLAS is limited too
    return threadpool_limits(limits=n, user_api="blas")


def draw(train: list[int], size: int, labels: list[Any], handmade: Any, rng: random.Random) -> tuple[Any, int]:
    """fit() on ``size`` labels drawn from ``train``; redrawn while the fit refuses the draw."""
    for attempt in range(100):
        chosen = rng.sample(train, size)
        try:
            return learning.fit([labels[i] for i in chosen], handmade, handmade, name=f"curve-{size}"), attempt
        except LabelsError:
            continue
    raise RuntimeError(f"no draw of {size} labels had 10 of each verdict in 100 tries")


def measure(harness: Any, profile: Any, labels: list[Any], items: list[Any], test: list[int]) -> dict[str, float]:
    scores = np.array([profile.logit(labels[i].example.levels, labels[i].example.hashes) for i in test])
    found = harness.evaluate_all([scores], [items[i] for i in test], 10)
    out = {g: float(found[g]["APGR"]) if g in found else math.nan for g in GROUPS}
    needs = np.array([labels[i].needs_strong for i in test])
    ones = np.ones(len(test))
    out["auroc"] = float(harness.auroc(scores, needs, ones))
    weak = np.array([items[i].weak_quality for i in test])
    strong = np.array([items[i].strong_quality for i in test])
    out["pooled"] = float(harness.apgr(*harness.routing_curve(scores, weak, strong, ones)))
    return out


def check(size: int, labels: list[Any], handmade: Any, train: list[int]) -> list[dict[str, Any]]:
    """One draw fitted with OpenBLAS as it is and on one thread, taking turns, twice: times,
    and the differences from the first fit."""
    runs = []
    for threads in (None, 1, None, 1):
        rng = random.Random(f"check/{size}")
        with blas_threads(threads):
            c0, t0 = time.process_time(), time.perf_counter()
            result, _ = draw(train, size, labels, handmade, rng)
            runs.append((threads, result, time.perf_counter() - t0, time.process_time() - c0))
    base = runs[0][1].profile
    out = []
    for threads, result, wall, cpu in runs:
        p = result.profile
        table = np.frombuffer(p.text.table, dtype=np.float32) - np.frombuffer(base.text.table, dtype=np.float32)
        out.append({"blas_threads": threads or "as it is (2)", "wall_s": wall, "cpu_s": cpu,
                    "strength": result.strength, "cv_apgr": result.new.apgr,
                    "features": len(p.text.indices) if p.text else 0,
                    "bias_diff": abs(p.bias - base.bias),
                    "weight_diff": max(abs(p.weights[d] - base.weights[d]) for d in p.weights),
                    "table_diff": float(np.max(np.abs(table)))})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled dev prompts (routing_eval.py beside it)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--seeds", type=int, default=len(SEEDS), help="seeds of two-way splits (each half held out in turn)")
    parser.add_argument("--repeats-large", type=int, default=6,
                        help="repeats for sizes of 2,000 and more (the first splits: seeds 0-2, both halves)")
    parser.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads for the fits (0: as it is)")
    parser.add_argument("--check", type=int, metavar="N", help="only: fit one draw of N labels with OpenBLAS on 2 threads and on 1, twice")
    parser.add_argument("--benchmark", help="one kind of traffic: draw labels from, and measure on, this benchmark's "
                                            "rows only (gsm8k, mmlu)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write every fit's figures here")
    args = parser.parse_args(argv)

    harness = load_harness(args.data)
    items, _ = harness.load_export(str(args.data))
    rows = [json.loads(line) for line in args.data.open(encoding="utf-8") if line.strip()]
    labels = list(read_file(args.data))
    assert [i.id for i in items] == [r["id"] for r in rows]
    handmade = builtin("handmade")
    load_before = os.getloadavg()
    fit_py = Path(learning.__file__)
    fingerprint = f"{fit_py.relative_to(ROOT)} sha256 {hashlib.sha256(fit_py.read_bytes()).hexdigest()[:12]}"

    if args.check:
        train = [i for i, r in enumerate(rows) if half(0, r["id"]) == 1]
        found = check(args.check, labels, handmade, train)
        print(f"fit() on one draw of {args.check} labels (seed 0, half 1 as training), OpenBLAS threads as they are and 1, taking turns, twice, "
              f"the 2-core machine busy with other work (load average {load_before[0]:.1f} before / "
              f"{os.getloadavg()[0]:.1f} after; {fingerprint}):\n")
        print("| OpenBLAS threads | wall s | CPU s | wall / first row's | strength | CV APGR "
              "| learned features | largest difference from the first row (bias, dimension weight, text table) |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for f in found:
            print(f"| {f['blas_threads']} | {f['wall_s']:.1f} | {f['cpu_s']:.1f} | "
                  f"{f['wall_s'] / found[0]['wall_s']:.3f} | {f['strength']} | {f['cv_apgr']:.4f} | {f['features']:,} | "
                  f"{f['bias_diff']:.1e}, {f['weight_diff']:.1e}, {f['table_diff']:.1e} |")
        if args.json:
            args.json.write_text(json.dumps({"check": found}, indent=1))
        return 0

    keep = [i for i, r in enumerate(rows) if args.benchmark is None or r["benchmark"] == args.benchmark]
    if not keep:
        parser.error(f"no rows of benchmark {args.benchmark!r}")
    splits = []
    for seed in range(args.seeds):
        halves = {i: half(seed, rows[i]["id"]) for i in keep}
        for k in (0, 1):
            splits.append((seed, k, [i for i in keep if halves[i] != k], [i for i in keep if halves[i] == k]))
    hand = {(seed, k): measure(harness, handmade, labels, items, test) for seed, k, _, test in splits}

    fits: list[dict[str, Any]] = []
    started = time.perf_counter()
    for size in args.sizes:
        repeats = splits if size < 2000 else splits[:args.repeats_large]
        for seed, k, train, test in repeats:
            rng = random.Random(f"{seed}/{k}/{size}")
            with blas_threads(args.blas_threads or None):
                t0 = time.perf_counter()
                result, redraws = draw(train, size, labels, handmade, rng)
                seconds = time.perf_counter() - t0
            new = measure(harness, result.profile, labels, items, test)
            fits.append({"size": size, "seed": seed, "held_out_half": k, "redraws": redraws, "strength": result.strength,
                         "fit_s": round(seconds, 2), "needs_strong": result.needs_strong,
                         "features": len(result.profile.text.indices) if result.profile.text else 0,
                         "cv_apgr": result.new.apgr, "cv_apgr_current": result.current.apgr, "worse": result.worse,
                         "new": new, "handmade": hand[(seed, k)],
                         "guarded": hand[(seed, k)] if result.worse else new})
            print(f"  size {size:>5} seed {seed} half {k}: mixed {new['mixed']:.3f} (hand-made "
                  f"{hand[(seed, k)]['mixed']:.3f}), AUROC {new['auroc']:.3f} ({hand[(seed, k)]['auroc']:.3f}), "
                  f"strength {result.strength}, {seconds:.1f} s", file=sys.stderr, flush=True)
    total = time.perf_counter() - started

    def mean(values: list[float]) -> float:
        finite = [v for v in values if not math.isnan(v)]
        return statistics.mean(finite) if finite else math.nan

    summary = []
    what = (f"{len(keep):,} {args.benchmark} rows of" if args.benchmark else f"{len(labels):,}")
    print(f"\nHeld-out APGR and AUROC against labels, fit(labels, current=handmade, base=handmade), {what} "
          f"dev prompts ({args.data.name}), two-way splits by sha256(seed/id); OpenBLAS "
          f"{'on ' + str(args.blas_threads) + ' thread(s)' if args.blas_threads else 'as it is'}; "
          f"{total / 60:.1f} min, load average {load_before[0]:.1f} before / {os.getloadavg()[0]:.1f} after "
          f"(2 cores, busy with other work); {fingerprint}, strengths tried {learning.STRENGTHS}\n")
    groups = [g for g in GROUPS if any(not math.isnan(f["new"][g]) for f in fits)]
    names = {"gsm8k": "GSM8K", "mmlu": "MMLU", "mt_bench": "MT-Bench", "mixed": "mixed"}
    print("Harness APGR (routing_eval.evaluate_all), new profile / hand-made, mean over the repeats:\n")
    print("| labels | repeats | " + " | ".join(f"{names[g]} new | {names[g]} hand-made" for g in groups)
          + " | mixed new − hand-made, mean (min, max) |")
    print("|---:|---:|" + "---:|---:|" * len(groups) + "---|")
    for size in args.sizes:
        group = [f for f in fits if f["size"] == size]
        new = {g: mean([f["new"][g] for f in group]) for g in (*GROUPS, "auroc", "pooled")}
        old = {g: mean([f["handmade"][g] for f in group]) for g in (*GROUPS, "auroc", "pooled")}
        deltas = [f["new"]["mixed"] - f["handmade"]["mixed"] for f in group]
        strengths = ", ".join(f"{s}×{n}" for s, n in sorted(
            {s: sum(1 for f in group if f["strength"] == s) for s in {f["strength"] for f in group}}.items()))
        refused = sum(1 for f in group if f["worse"])
        summary.append({"size": size, "repeats": len(group), "new": new, "handmade": old, "refused": refused,
                        "guarded": {g: mean([f["guarded"][g] for f in group]) for g in ("mixed", "pooled", "auroc")},
                        "mixed_delta": {"mean": mean(deltas), "min": min(deltas), "max": max(deltas)},
                        "strengths": strengths, "fit_s_median": statistics.median(f["fit_s"] for f in group)})
        print(f"| {size:,} | {len(group)} | " + " | ".join(f"{new[g]:.3f} | {old[g]:.3f}" for g in groups)
              + f" | {mean(deltas):+.3f} ({min(deltas):+.3f}, {max(deltas):+.3f}) |")
    print("\nPooled over the held-out rows (each row weighing one, as a deployment's own labels weigh): APGR with the "
          "rows' real qualities and AUROC of needs_strong; 'refused': fits whose own cross-validated APGR fell below "
          "the hand-made profile's by more than fit.TOLERANCE (Fit.worse: `stratum fit --out` does not write them "
          "without --force), counted as the hand-made profile in the 'as written' columns:\n")
    print("| labels | pooled APGR new | pooled APGR hand-made | AUROC new | AUROC hand-made | refused | "
          "pooled APGR as written | AUROC as written | strengths chosen | fit s (median) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for row in summary:
        new, old, g = row["new"], row["handmade"], row["guarded"]
        print(f"| {row['size']:,} | {new['pooled']:.3f} | {old['pooled']:.3f} | {new['auroc']:.3f} | {old['auroc']:.3f} "
              f"| {row['refused']} | {g['pooled']:.3f} | {g['auroc']:.3f} | {row['strengths']} | "
              f"{row['fit_s_median']:.1f} |")
    allh = {g: mean([v[g] for v in hand.values()]) for g in (*GROUPS, "auroc", "pooled")}
    print(f"\nHand-made on all {len(splits)} held-out halves: "
          + ", ".join(f"{names[g]} {allh[g]:.3f}" for g in groups)
          + f", pooled APGR {allh['pooled']:.3f}, pooled AUROC {allh['auroc']:.3f}. "
          "It was fitted on all of the dev set (scripts/fit_scorer.py): its held-out figures are optimistic. "
          + ("A deployment's labels are one kind of traffic; this set mixes three benchmarks (MT-Bench: about 10 "
             "prompts per held-out half, so its column is noise)." if args.benchmark is None else
             f"Labels drawn from, and measured on, {args.benchmark} rows only: one kind of traffic."))
    redrawn = sum(f["redraws"] for f in fits)
    print(f"Draws refused by fit() (fewer than 10 of one verdict) and drawn again: {redrawn}.")
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "handmade_all_halves": allh, "fits": fits,
                                         "minutes": total / 60, "benchmark": args.benchmark, "fit_py": fingerprint, "blas_threads": args.blas_threads}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
