"""Fitting a profile to labels, and measuring it against the profile in use.

The new profile builds on a base profile (the shipped default unless told otherwise): a
logistic regression whose logit is

    (1 + scale) * base logit + intercept + Σ correction_d * level_d + Σ weight_w * word_w

the base logit entering as an offset: with few labels (or a strong penalty) every correction
stays near zero and the new profile ranks as the base does; labels that disagree with the
base move the corrections to the dimensions' weights and the weights of words and word
pairs of the last user turn (the learned part). The corrections are penalised (L2, at the
chosen strength), the base's scale much less (a prior of 1 +- 1), the intercept not at all.
No library fits a logistic regression with an offset, so the loss and its gradient are
written here and minimised by scipy's L-BFGS-B. The result folds back into one profile of
the usual form (bias, dimension weights, text table): scoring costs what it always did.

The strength is chosen by cross-validation (stratified folds) among :data:`STRENGTHS`, on
held-out log loss (the score is a probability: of two equal rankings the better calibrated
wins), by the one-standard-error rule (the weakest strength within a standard error of the
best); the figures printed are those folds' held-out APGR and AUROC. The fitted score is a
probability that a request needs the stronger tier; ``keep_share_at`` scales it back to the
base's scale and shifts it so that the labelled requests keep the share above that entry
score they get from the current profile.

Needs numpy and scipy: ``pip install 'stratum-litellm[learn]'``.
"""

from __future__ import annotations

import math
import os
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..scoring.dimensions import DIMENSIONS
from ..scoring.profile import Profile, TextPart
from .labels import Label, LabelsError
from .quality import apgr, auroc

__all__ = ["MIN_LABELS", "MIN_EACH", "Fit", "Figures", "fit", "figures", "shares"]

#: The fewest labels a fit accepts, and the fewest of each verdict among them.
MIN_LABELS = 50
MIN_EACH = 10
#: Strengths tried (the inverse of the corrections' penalty): smaller keeps closer to the base.
STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
#: Bits of the learned part's table (2**18 float32: 1 MB in memory).
BITS = 18
#: The learned part keeps at most this many words and word pairs, the weightiest (a profile
#: file of a few hundred KB; dropping the rest changed no held-out figure in the third decimal).
MAX_FEATURES = 20_000
#: A new profile counts as worse than the current one below its APGR by more than this.
TOLERANCE = 0.005


@dataclass(frozen=True, slots=True)
class Figures:
    apgr: float
    auroc: float
    labels: int


@dataclass(frozen=True)
class Fit:
    profile: Profile
    #: Held-out figures of the new profile (cross-validated) and of the current one on the
    #: same folds (it is not refitted).
    new: Figures
    current: Figures
    strength: float
    folds: int
    labels: int
    needs_strong: int
    by_source: dict[str, int] = field(default_factory=dict)

    @property
    def worse(self) -> bool:
        """The new profile ranks these labels worse than the current one (beyond noise)."""
        return self.new.apgr < self.current.apgr - TOLERANCE


def _libraries() -> tuple[Any, Any, Any]:
    # One BLAS thread: the fit's vectors are small and a busy 2-core machine made OpenBLAS's
    # spinning threads 13-70x slower than one (benchmarks/RESULTS-learning.md). Only takes
    # effect when numpy is not loaded yet (the CLI); the objective uses no BLAS call anyway.
    if "numpy" not in sys.modules:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")
    try:
        import numpy
        from scipy import optimize, sparse
    except ImportError as exc:
        raise LabelsError(f"stratum fit needs numpy and scipy ({exc.name} is missing): "
                          "pip install 'stratum-litellm[learn]'") from None
    return numpy, sparse, optimize


def check(labels: Sequence[Label]) -> None:
    """Refuse too few labels, or too few of one verdict, saying how many are needed."""
    positives = sum(1 for label in labels if label.needs_strong)
    negatives = len(labels) - positives
    if len(labels) < MIN_LABELS or positives < MIN_EACH or negatives < MIN_EACH:
        raise LabelsError(
            f"{len(labels)} labels ({positives} needs strong, {negatives} first tier enough): a fit needs at "
            f"least {MIN_LABELS}, with at least {MIN_EACH} of each verdict")


def _design(labels: Sequence[Label], base: Profile, bits: int) -> tuple[Any, Any, Any, Any]:
    """(X, offset, y, w): the levels and hashed words of each label (one column per
    dimension, then one per table slot), the base's logit of each, the verdicts, the weights."""
    numpy, sparse, _ = _libraries()
    mask = (1 << bits) - 1
    rows, cols, vals = [], [], []
    width = len(DIMENSIONS)
    for row, label in enumerate(labels):
        example = label.example
        for column, level in enumerate(example.levels):
            if level:
                rows.append(row)
                cols.append(column)
                vals.append(level)
        if example.hashes:
            share = 1.0 / math.sqrt(len(example.hashes))
            for feature in example.hashes:
                rows.append(row)
                cols.append(width + (feature & mask))
                vals.append(share)
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(len(labels), width + (1 << bits)))
    X.sum_duplicates()
    offset = numpy.array([base.logit(label.example.levels, label.example.hashes) for label in labels])
    y = numpy.array([1.0 if label.needs_strong else 0.0 for label in labels])
    w = numpy.array([label.weight for label in labels])
    return X, offset, y, w


@dataclass(frozen=True)
class _Model:
    """A fitted regression: the logit is ``(1 + scale) * offset + intercept + X @ beta``."""

    intercept: float
    scale: float
    beta: Any

    def logits(self, X: Any, offset: Any) -> Any:
        return offset * (1.0 + self.scale) + self.intercept + X @ self.beta


#: The prior on the base's scale: (1 + scale) is 1 +- this (one standard deviation).
SCALE_PRIOR = 1.0


def _train(X: Any, offset: Any, y: Any, w: Any, strength: float) -> _Model:
    """Minimise  Σ w·logloss + ½‖beta‖²/strength + ½(scale/SCALE_PRIOR)²  (intercept free)."""
    numpy, _, optimize = _libraries()
    sign = 2.0 * y - 1.0
    X_t = X.T.tocsr()

    def objective(theta: Any) -> tuple[float, Any]:
        intercept, scale, beta = theta[0], theta[1], theta[2:]
        z = offset * (1.0 + scale) + intercept + X @ beta
        # Element-wise products and sums, no dot products: no BLAS call on the way.
        loss = float((w * numpy.logaddexp(0.0, -sign * z)).sum())
        g = w * (0.5 * (1.0 + numpy.tanh(0.5 * z)) - y)  # w * (sigmoid(z) - y), overflow-free
        value = loss + 0.5 * float((beta * beta).sum()) / strength + 0.5 * (scale / SCALE_PRIOR) ** 2
        gradient = numpy.concatenate(([g.sum(), float((g * offset).sum()) + scale / SCALE_PRIOR ** 2],
                                      X_t @ g + beta / strength))
        return value, gradient

    start = numpy.zeros(X.shape[1] + 2)
    found = optimize.minimize(objective, start, jac=True, method="L-BFGS-B", options={"maxiter": 3000})
    return _Model(float(found.x[0]), float(found.x[1]), found.x[2:])


def _folds(y: Any, folds: int, seed: int) -> list[tuple[Any, Any]]:
    """Stratified folds: each verdict's labels shuffled (seeded) and dealt round-robin."""
    numpy = _libraries()[0]
    rng = numpy.random.RandomState(seed)
    assigned = numpy.zeros(len(y), dtype=int)
    for verdict in (0.0, 1.0):
        members = numpy.flatnonzero(y == verdict)
        rng.shuffle(members)
        assigned[members] = numpy.arange(len(members)) % folds
    everything = numpy.arange(len(y))
    return [(everything[assigned != k], everything[assigned == k]) for k in range(folds)]


def fit(labels: Sequence[Label], current: Profile, base: Profile, *, name: str = "fitted", bits: int = BITS,
        keep_share_at: float | None = None, folds: int = 5, seed: int = 0,
        strengths: Sequence[float] = STRENGTHS, max_features: int = MAX_FEATURES) -> Fit:
    """A profile fitted to ``labels`` on top of ``base``, with its held-out figures and the
    current profile's on the same folds. ``keep_share_at``: an entry score at which the new
    profile keeps the current one's share of these requests."""
    check(labels)
    numpy = _libraries()[0]
    if base.text is not None:
        bits = base.text.bits  # the base's learned part maps words to slots of its own table
    X, offset, y, w = _design(labels, base, bits)
    # Only the columns some label has (a word no label has gets no weight anyway): the
    # regression works on thousands of columns, not 2**bits.
    columns = numpy.unique(X.indices)
    X = X[:, columns]
    splits = _folds(y, min(folds, int(min(y.sum(), len(y) - y.sum()))), seed)
    needs, weights = y.astype(bool).tolist(), w.tolist()
    current_scores = [current.logit(label.example.levels, label.example.hashes) for label in labels]
    tried = []  # (strength, mean log loss, its standard error, APGR, AUROC), weakest first
    for strength in sorted(strengths):
        held_apgr, held_auroc, losses = [], [], []
        for train, test in splits:
            model = _train(X[train], offset[train], y[train], w[train], strength)
            scores = model.logits(X[test], offset[test]).tolist()
            truth, weight = [needs[i] for i in test], [weights[i] for i in test]
            held_apgr.append(apgr(scores, truth, weight))
            held_auroc.append(auroc(scores, truth, weight))
            losses.append(_log_loss(scores, truth, weight))
        spread = math.sqrt(sum((x - _mean(losses)) ** 2 for x in losses) / max(1, len(losses) - 1) / len(losses))
        tried.append((strength, _mean(losses), spread, _mean(held_apgr), _mean(held_auroc)))
    # The one-standard-error rule: the weakest strength (the closest to the base) whose
    # held-out loss is within one standard error of the best; a few noisy labels cannot
    # then buy a strong correction that only fits them.
    least = min(tried, key=lambda t: t[1])
    strength, _, _, new_apgr, new_auroc = next(t for t in tried if t[1] <= least[1] + least[2])
    cur_apgr = _mean([apgr([current_scores[i] for i in test], [needs[i] for i in test], [weights[i] for i in test])
                      for _, test in splits])
    cur_auroc = _mean([auroc([current_scores[i] for i in test], [needs[i] for i in test],
                             [weights[i] for i in test]) for _, test in splits])
    model = _train(X, offset, y, w, strength)
    profile = _fold(model, columns, base, bits, name, max_features)
    if keep_share_at is not None:
        # The base's scale, so scores read as they did (a greeting stays as low); then the
        # bias that keeps today's share above the entry score.
        if 1.0 + model.scale > 0:
            profile = _times(profile, 1.0 / (1.0 + model.scale))
        profile = _keep_share(profile, current, labels, keep_share_at)
    by_source = Counter(label.source for label in labels)
    newest = max((label.created for label in labels), default=0.0)
    profile = _with_fitted(profile, {
        "at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "labels": len(labels),
        "needs_strong": int(y.sum()),
        "sources": dict(sorted(by_source.items())),
        "labels_until": newest or None,
        "base": base.name,
        "strength": strength,
        "cv": {"folds": len(splits), "apgr": round(new_apgr, 4), "auroc": round(new_auroc, 4)},
        "keep_share_at": keep_share_at,
    })
    return Fit(profile, Figures(new_apgr, new_auroc, len(labels)), Figures(cur_apgr, cur_auroc, len(labels)),
               strength, len(splits), len(labels), int(y.sum()), dict(by_source))


def _log_loss(logits: Sequence[float], needs: Sequence[bool], weights: Sequence[float]) -> float:
    """Weighted mean log loss of logits: what picks the strength (the score is a
    probability, and equal rankings still differ in how sure they are)."""
    total = 0.0
    for z, y, w in zip(logits, needs, weights):
        margin = z if y else -z
        total += w * (math.log1p(math.exp(-margin)) if margin > -30 else -margin)
    return total / sum(weights)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(finite) / len(finite) if finite else math.nan


def _fold(model: _Model, columns: Any, base: Profile, bits: int, name: str,
          max_features: int = MAX_FEATURES) -> Profile:
    """The regression as one profile: the base times its scale, plus the corrections.
    ``columns``: the design's column (dimension, then table slot) of each coefficient."""
    factor = 1.0 + model.scale
    width = len(DIMENSIONS)
    corrections = dict(zip(columns.tolist(), model.beta.tolist()))
    weights = {d: factor * base.weights[d] + corrections.get(i, 0.0) for i, d in enumerate(DIMENSIONS)}
    table: dict[int, float] = {}
    if base.text is not None:
        for index, value in zip(base.text.indices, base.text.weights):
            table[index] = table.get(index, 0.0) + factor * value
    for column, value in corrections.items():
        if column >= width and value:
            table[column - width] = table.get(column - width, 0.0) + value
    weightiest = sorted(((i, v) for i, v in table.items() if abs(v) >= 1e-7), key=lambda iv: -abs(iv[1]))
    kept = sorted(weightiest[:max_features])
    text = TextPart.of(bits, [i for i, _ in kept], [v for _, v in kept]) if kept else None
    return Profile(name, model.intercept + factor * base.bias, weights, text, {}, source="")


def _keep_share(profile: Profile, current: Profile, labels: Sequence[Label], entry: float) -> Profile:
    """``profile`` with its bias shifted so the share of ``labels`` scoring at or above
    ``entry`` is the current profile's."""
    target = sum(1 for label in labels if current.value(label.example.levels, label.example.hashes) >= entry)
    logits = sorted((profile.logit(label.example.levels, label.example.hashes) for label in labels), reverse=True)
    z_entry = math.log(entry / (1 - entry)) if 0 < entry < 1 else (-60.0 if entry <= 0 else 60.0)
    if target <= 0:
        shift = z_entry - logits[0] - 1e-3
    elif target >= len(logits):
        shift = z_entry - logits[-1] + 1e-3
    else:  # midway between the last one in and the first one out
        shift = z_entry - (logits[target - 1] + logits[target]) / 2
    return Profile(profile.name, profile.bias + shift, profile.weights, profile.text, profile.fitted, profile.source)


def _times(profile: Profile, factor: float) -> Profile:
    """``profile`` with its logit multiplied by ``factor`` (the same ranking)."""
    text = profile.text
    if text is not None:
        text = TextPart.of(text.bits, text.indices, [v * factor for v in text.weights])
    return Profile(profile.name, profile.bias * factor, {d: w * factor for d, w in profile.weights.items()}, text,
                   profile.fitted, profile.source)


def _with_fitted(profile: Profile, fitted: dict[str, Any]) -> Profile:
    return Profile(profile.name, profile.bias, profile.weights, profile.text, fitted, profile.source)


def figures(profile: Profile, labels: Sequence[Label]) -> Figures:
    """How ``profile`` ranks ``labels`` as it is (no fitting)."""
    scores = [profile.logit(label.example.levels, label.example.hashes) for label in labels]
    needs = [label.needs_strong for label in labels]
    weights = [label.weight for label in labels]
    return Figures(apgr(scores, needs, weights), auroc(scores, needs, weights), len(labels))


def shares(profile: Profile, labels: Sequence[Label], entries: Sequence[float]) -> list[float]:
    """The share of ``labels`` each rung gets at these entry scores (first rung first)."""
    counts = [0] * len(entries)
    for label in labels:
        value = profile.value(label.example.levels, label.example.hashes)
        rung = 0
        while rung + 1 < len(entries) and value >= entries[rung + 1]:
            rung += 1
        counts[rung] += 1
    return [c / len(labels) if labels else 0.0 for c in counts]

