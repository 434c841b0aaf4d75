#!/usr/bin/env python3
"""Fit the dimension weights of stratum_litellm.scoring.scorer and write data/weights.json.

Reproducible and deterministic (no randomness; folds come from sha256 of seed/id).
Offline only: the runtime package never reads the evaluation data, only the JSON
written here. Needs numpy (not a runtime dependency).

    python scripts/fit_scorer.py --data ../shared/eval/routellm_dev.jsonl          # fit, CV, write
    python scripts/fit_scorer.py --data ../shared/eval/routellm_dev.jsonl --dry-run

Method
------
1. Every prompt becomes the vector of dimension levels the runtime computes
   (``scorer.levels(RequestView.from_prompt(prompt))``), each in [0, 1].
2. Stage 1, within benchmarks: non-negative ridge regression of the quality *gain*
   (strong - weak quality) on the levels, after centring levels and gains on each
   benchmark's own mean. The gain is what APGR rewards (ranking by expected gain maximises
   the area under the routing curve; a prompt the weak model solves and the strong one
   fails counts against routing it). The centring means the fit learns what makes a
   prompt harder than others *of its kind*, never which benchmark is harder: no weight
   can act as a benchmark detector. Benchmarks are weighted 1/sqrt(n), so the big one
   does not drown the small ones and the 20-prompt one does not dominate either.
3. Stage 2, across benchmarks, for CROSS dimensions only ("arithmetic"): their weight may
   grow to fit the pooled data (a quantitative word problem is harder for a weak model
   than a quiz question), with the stage-1 score held as one fixed column.
4. Boxes (PRIOR_BOXES, not learned): floors for what matters even where quiz data is
   silent (code, reasoning, constraints: real traffic has them, the dev set barely does),
   ceilings so one benchmark's template cannot make a dimension decide alone.
   ``context`` has no data at all (single-turn prompts) and keeps its prior weight.
5. Calibration: a request with no level above 0 scores EMPTY_SCORE, and the default threshold
   0.65 sends TARGET_STRONG_SHARE of the dev mix (benchmarks weighted equally) to the
   strong tier; the scale is found by bisection.
6. Cross-validation: for each of 5 seeds the dev set is cut into two halves (sha256 of
   seed/id); the whole procedure (fit, boxes, calibration) runs on one half and is
   measured with routing_eval.py's own metrics on the other, both ways.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stratum_litellm.scoring.view import RequestView  # noqa: E402
from stratum_litellm.scoring.scorer import DIMENSIONS, levels  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "eval" / "routellm_dev.jsonl"
OUT = ROOT / "stratum_litellm" / "scoring" / "data" / "weights.json"

THRESHOLD = 0.65  # the policy's default threshold
EMPTY_SCORE = 0.08  # score of a request at level 0 on every dimension ("hi", "thanks")
TARGET_STRONG_SHARE = 0.35  # share of the dev mix (benchmarks weighted equally) at or above THRESHOLD
L2 = 1.0  # ridge penalty on standardised levels (results are insensitive to it)
# Boxes in final logit units per unit of level, not learned. Floors: what matters even
# where quiz-style data is silent or noisy (real traffic has code, multi-constraint prose
# and agents; the dev set has none). Ceilings: no single dimension may decide alone on
# the strength of one benchmark's template (the fit would give "steps" and "ethics" ~6).
PRIOR_BOXES: dict[str, tuple[float, float]] = {
    "length": (1.5, 4.0),
    "math": (1.5, 4.0),
    "arithmetic": (0.5, 6.0),
    "code": (3.0, 5.0),
    "reasoning": (1.2, 4.0),
    "steps": (0.6, 3.0),
    "entities": (0.0, 2.0),
    "constraints": (0.8, 3.0),
    "negation": (0.4, 3.0),
    "law": (0.3, 4.0),
    "medicine": (0.3, 4.0),
    "physics": (0.3, 4.0),
    "logic": (0.5, 4.0),
    "economics": (0.3, 4.0),
    "ethics": (0.3, 4.0),
    "context": (1.0, 1.0),
}
FIXED = ("context",)  # no data at all (single-turn prompts): prior weight only
# Dimensions whose weight may also be learned *across* benchmarks (stage 2 below).
CROSS = ("arithmetic",)
CV_SEEDS = (0, 1, 2, 3, 4)


# --------------------------------------------------------------------------- data


def load_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def level_matrix(prompts: list[str]) -> np.ndarray:
    return np.array([[levels(RequestView.from_prompt(p))[d] for d in DIMENSIONS] for p in prompts], float)


def load_harness(data_path: Path):
    """routing_eval.py from beside the data file: the same metrics the project reports."""
    spec = importlib.util.spec_from_file_location("routing_eval", data_path.parent / "routing_eval.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["routing_eval"] = module
    spec.loader.exec_module(module)
    return module


# --------------------------------------------------------------------------- fit


def benchmark_weights(bench: np.ndarray) -> np.ndarray:
    counts = {b: int(np.sum(bench == b)) for b in set(bench.tolist())}
    w = np.array([1.0 / math.sqrt(counts[b]) for b in bench])
    return w / w.sum()


def nonneg_ridge(S: np.ndarray, target: np.ndarray, w: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """argmin sum w (target - a - S b)^2 + L2/n |b_std|^2 over b >= lower (weighted, with intercept)."""
    mu = w @ S
    sd = np.sqrt(w @ (S - mu) ** 2) + 1e-9
    Z = (S - mu) / sd
    y = target - w @ target
    A = Z.T @ (Z * w[:, None]) + (L2 / len(target)) * np.eye(S.shape[1])
    r = Z.T @ (w * y)
    lo = lower * sd  # bounds in standardised units
    beta = np.maximum(np.linalg.lstsq(A, r, rcond=None)[0], lo)
    step = 1.0 / np.linalg.eigvalsh(A).max()
    for _ in range(20000):  # projected gradient; the problem is small and convex
        new = np.maximum(beta - step * (A @ beta - r), lo)
        if np.max(np.abs(new - beta)) < 1e-12:
            break
        beta = new
    return beta / sd


def within_benchmark(
    S: np.ndarray, gain: np.ndarray, bench: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Centre levels and gains on each benchmark's own mean.

    What is then learned is what makes a prompt harder *than others of its kind*, never
    which kind (benchmark) is harder: no weight can act as a benchmark detector.
    """
    Sc, gc = S.copy(), gain.astype(float).copy()
    for b in set(bench.tolist()):
        sel = bench == b
        wb = w[sel] / w[sel].sum()
        Sc[sel] -= wb @ S[sel]
        gc[sel] -= wb @ gain[sel]
    return Sc, gc


def calibrate(S: np.ndarray, beta: np.ndarray, bench: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Scale gain-unit coefficients to logit weights within the boxes; fix the bias.

    The bias makes an empty request score EMPTY_SCORE; the scale gamma is found by
    bisection so that TARGET_STRONG_SHARE of the dev mix scores >= THRESHOLD.
    """
    bias = math.log(EMPTY_SCORE / (1 - EMPTY_SCORE))
    kinds = sorted(set(bench.tolist()))
    share_w = np.zeros(len(bench))
    for b in kinds:
        share_w[bench == b] = 1.0 / (len(kinds) * np.sum(bench == b))
    lower = np.array([PRIOR_BOXES[d][0] for d in DIMENSIONS])
    upper = np.array([PRIOR_BOXES[d][1] for d in DIMENSIONS])
    cut = math.log(THRESHOLD / (1 - THRESHOLD))

    def weights_for(gamma: float) -> np.ndarray:
        return np.clip(gamma * beta, lower, upper)

    def share(gamma: float) -> float:
        return float(np.sum(share_w * (bias + S @ weights_for(gamma) >= cut)))

    lo, hi = 0.0, 1e4
    if share(lo) >= TARGET_STRONG_SHARE:  # the floors alone already route that much
        return bias, weights_for(lo), lo
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if share(mid) < TARGET_STRONG_SHARE else (lo, mid)
    return bias, weights_for(hi), hi


def fit(S: np.ndarray, gain: np.ndarray, bench: np.ndarray) -> tuple[float, np.ndarray, dict]:
    """Stage 1: within-benchmark ridge on gain. Stage 2: CROSS dimensions may add weight
    from the pooled data (a quantitative word problem is harder than a quiz question).
    Then boxes and calibration."""
    w = benchmark_weights(bench)
    free = np.array([d not in FIXED for d in DIMENSIONS])
    beta = np.zeros(S.shape[1])
    Sc, gc = within_benchmark(S[:, free], gain, bench, w)
    beta[free] = nonneg_ridge(Sc, gc, w, np.zeros(free.sum()))
    within = beta.copy()
    if CROSS:
        cross = [DIMENSIONS.index(d) for d in CROSS]
        A = np.column_stack([S @ beta] + [S[:, i] for i in cross])
        coef = nonneg_ridge(A, gain, w, np.array([1.0] + [0.0] * len(cross)))
        beta = beta * coef[0]
        for k, i in enumerate(cross):
            beta[i] += coef[k + 1]
    bias, weights, gamma = calibrate(S, beta, bench)
    info = {
        "within_coefficients": dict(zip(DIMENSIONS, within.round(6).tolist())),
        "gain_coefficients": dict(zip(DIMENSIONS, beta.round(6).tolist())),
        "gamma": gamma,
    }
    return bias, weights, info


# --------------------------------------------------------------------------- evaluation


def fold_of(item_id: str, seed: int) -> int:
    return int(hashlib.sha256(f"{seed}/{item_id}".encode()).hexdigest()[:8], 16) % 2


def metrics(RE, scores: np.ndarray, items: list, idx: np.ndarray) -> dict:
    sub = [items[i] for i in idx]
    return RE.evaluate_all([scores[idx]], sub, 10)


def summarize(runs: list[dict]) -> dict:
    out = {}
    for bench in runs[0]:
        out[bench] = {k: float(np.mean([r[bench][k] for r in runs])) for k in ("APGR", "AUROC", "CPT50", "CPT80")}
        out[bench]["APGR_min"] = float(np.min([r[bench]["APGR"] for r in runs]))
    return out


def print_table(title: str, table: dict) -> None:
    print(f"\n{title}")
    print(f"{'benchmark':<10} {'APGR':>7} {'min':>7} {'AUROC':>7} {'CPT50%':>7} {'CPT80%':>7}")
    for bench, m in table.items():
        print(f"{bench:<10} {m['APGR']:>7.4f} {m.get('APGR_min', m['APGR']):>7.4f} {m['AUROC']:>7.4f} "
              f"{m['CPT50']:>7.1f} {m['CPT80']:>7.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="labelled JSONL (routing_eval export)")
    p.add_argument("--out", type=Path, default=OUT)
    p.add_argument("--dry-run", action="store_true", help="fit and report, do not write")
    args = p.parse_args(argv)

    RE = load_harness(args.data)
    items, _ = RE.load_export(str(args.data))
    rows = load_rows(args.data)
    bench = np.array([r["benchmark"] for r in rows])
    gain = np.array([float(r["strong_quality"]) - float(r["weak_quality"]) for r in rows])
    S = level_matrix([r["prompt"] for r in rows])
    assert [it.id for it in items] == [r["id"] for r in rows]

    # Cross-validation of the whole procedure.
    held_out, trained = [], []
    for seed in CV_SEEDS:
        folds = np.array([fold_of(r["id"], seed) for r in rows])
        for k in (0, 1):
            tr, te = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
            bias, weights, _ = fit(S[tr], gain[tr], bench[tr])
            z = bias + S @ weights
            held_out.append(metrics(RE, z, items, te))
            trained.append(metrics(RE, z, items, tr))
    cv_test, cv_train = summarize(held_out), summarize(trained)
    # Seed 0 spelled out: fit on half A, report on half B, and the other way round.
    print_table("seed 0: fitted on half A, measured on half B (held out)", summarize([held_out[1]]))
    print_table("seed 0: fitted on half B, measured on half A (held out)", summarize([held_out[0]]))
    title = f"cross-validation, held-out halves, mean of {len(held_out)} fits ({len(CV_SEEDS)} seeds x 2 folds)"
    print_table(title, cv_test)
    print_table("cross-validation, the halves fitted on (same fits)", cv_train)

    bias, weights, info = fit(S, gain, bench)
    z = bias + S @ weights
    full = metrics(RE, z, items, np.arange(len(items)))
    print_table("final fit on all dev (in-sample)", summarize([full]))
    print(f"\nbias {bias:+.4f}")
    for d, w in zip(DIMENSIONS, weights):
        lo, hi = PRIOR_BOXES[d]
        print(f"  {d:<12} {w:7.4f}  (box {lo:.1f}..{hi:.1f})")
    value = 1 / (1 + np.exp(-z))
    print(f"dev share at >= {THRESHOLD}: {np.mean(value >= THRESHOLD):.3f} (unweighted)")

    if args.dry_run:
        return 0
    payload = {
        "_about": "Weights of stratum_litellm.scoring.scorer, written by scripts/fit_scorer.py; do not edit by hand.",
        "bias": round(bias, 6),
        "weights": {d: round(float(w), 6) for d, w in zip(DIMENSIONS, weights)},
        "fit": {
            "data_sha256": hashlib.sha256(args.data.read_bytes()).hexdigest(),
            "n": len(rows),
            "threshold": THRESHOLD,
            "empty_score": EMPTY_SCORE,
            "target_strong_share": TARGET_STRONG_SHARE,
            "prior_boxes": PRIOR_BOXES,
            "cross": CROSS,
            "cv_held_out": cv_test,
            "cv_trained": cv_train,
            "in_sample": summarize([full]),
            **info,
        },
    }
    args.out.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
