"""Fitting a profile to labels, and measuring it against the profile in use.

The new profile builds on a base profile (the shipped default unless told otherwise): a
logistic regression (scikit-learn) over

- the base profile's logit (one column, lightly penalised, so a few labels can only rescale
  what the base already knows, and many can overrule it),
- the level of each dimension (so the labels can re-weigh them),
- the hashed words and word pairs of the last user turn (the learned text part),

on the labels' weights. Its coefficients fold back into one profile of the usual form (bias,
dimension weights, text table), so scoring costs what it always did. The penalty is chosen
by cross-validation (stratified folds) among :data:`STRENGTHS`, on held-out log loss (the
score is a probability: of two equal rankings the better calibrated wins); the figures
printed are those folds' held-out APGR and AUROC. The fitted score is a probability that a request needs
the stronger tier; ``keep_share`` shifts its bias instead so that the labelled requests keep
the share above the entry score they get today.

Needs numpy, scipy and scikit-learn: ``pip install 'stratum-litellm[learn]'``.
"""

from __future__ import annotations

import math
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
#: Inverse penalties tried (scikit-learn's C): smaller keeps closer to the base profile.
STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
#: Scale of the base logit's column: its coefficient is penalised this many times less
#: (squared) than a word's, so the base's ranking is the starting point.
BASE_SCALE = 5.0
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


def _libraries() -> tuple[Any, Any, Any, Any]:
    try:
        import numpy
        from scipy import sparse
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold
    except ImportError as exc:
        raise LabelsError(f"stratum fit needs numpy, scipy and scikit-learn ({exc.name} is missing): "
                          "pip install 'stratum-litellm[learn]'") from None
    return numpy, sparse, LogisticRegression, StratifiedKFold


def check(labels: Sequence[Label]) -> None:
    """Refuse too few labels, or too few of one verdict, saying how many are needed."""
    positives = sum(1 for label in labels if label.needs_strong)
    negatives = len(labels) - positives
    if len(labels) < MIN_LABELS or positives < MIN_EACH or negatives < MIN_EACH:
        raise LabelsError(
            f"{len(labels)} labels ({positives} needs strong, {negatives} first tier enough): a fit needs at "
            f"least {MIN_LABELS}, with at least {MIN_EACH} of each verdict")


def _design(labels: Sequence[Label], base: Profile, bits: int) -> tuple[Any, Any, Any]:
    numpy, sparse, _, _ = _libraries()
    mask = (1 << bits) - 1
    rows, cols, vals = [], [], []
    width = 1 + len(DIMENSIONS)
    for row, label in enumerate(labels):
        example = label.example
        rows.append(row)
        cols.append(0)
        vals.append(base.logit(example.levels, example.hashes))
        for column, level in enumerate(example.levels, start=1):
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
    y = numpy.array([label.needs_strong for label in labels])
    w = numpy.array([label.weight for label in labels])
    return X, y, w


def _model(strength: float) -> Any:
    _, _, LogisticRegression, _ = _libraries()
    return LogisticRegression(C=strength, max_iter=3000, tol=1e-5)


def _scaled(X: Any) -> Any:
    """The design with the base logit's column scaled up (lighter penalty on it)."""
    _, sparse, _, _ = _libraries()
    scale = sparse.diags([BASE_SCALE] + [1.0] * (X.shape[1] - 1))
    return (X @ scale).tocsr()


def fit(labels: Sequence[Label], current: Profile, base: Profile, *, name: str = "fitted", bits: int = BITS,
        keep_share_at: float | None = None, folds: int = 5, seed: int = 0,
        strengths: Sequence[float] = STRENGTHS, max_features: int = MAX_FEATURES) -> Fit:
    """A profile fitted to ``labels`` on top of ``base``, with its held-out figures and the
    current profile's on the same folds. ``keep_share_at``: an entry score at which the new
    profile keeps the current one's share of these requests."""
    check(labels)
    numpy, _, _, StratifiedKFold = _libraries()
    X, y, w = _design(labels, base, bits)
    # Only the columns some label has (a word no label has gets no weight anyway): the
    # regression then works on thousands of columns, not 2**bits.
    columns = numpy.unique(X.indices)
    X = _scaled(X)[:, columns]
    splits = list(StratifiedKFold(n_splits=min(folds, int(min(y.sum(), (~y).sum()))), shuffle=True,
                                  random_state=seed).split(numpy.zeros(len(y)), y))
    current_scores = [current.logit(label.example.levels, label.example.hashes) for label in labels]
    best: tuple[float, float, float, float] | None = None  # log loss, strength, APGR, AUROC
    for strength in strengths:
        held_apgr, held_auroc, losses = [], [], []
        for train, test in splits:
            model = _model(strength).fit(X[train], y[train], sample_weight=w[train])
            scores = model.decision_function(X[test]).tolist()
            held_apgr.append(apgr(scores, y[test].tolist(), w[test].tolist()))
            held_auroc.append(auroc(scores, y[test].tolist(), w[test].tolist()))
            losses.append(_log_loss(scores, y[test].tolist(), w[test].tolist()))
        candidate = (_mean(losses), strength, _mean(held_apgr), _mean(held_auroc))
        if best is None or candidate[0] < best[0] - 1e-9:
            best = candidate
    assert best is not None
    _, strength, new_apgr, new_auroc = best
    cur_apgr = _mean([apgr([current_scores[i] for i in test], y[test].tolist(), w[test].tolist()) for _, test in splits])
    cur_auroc = _mean([auroc([current_scores[i] for i in test], y[test].tolist(), w[test].tolist()) for _, test in splits])
    model = _model(strength).fit(X, y, sample_weight=w)
    profile = _fold(model, base, bits, name, max_features, columns)
    if keep_share_at is not None:
        # The base's scale, so scores read as they did (a greeting stays as low); then the
        # bias that keeps today's share above the entry score.
        scale = float(model.coef_[0][0]) * BASE_SCALE if columns[0] == 0 else 0.0
        if scale > 0:
            profile = _times(profile, 1.0 / scale)
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


def _fold(model: Any, base: Profile, bits: int, name: str, max_features: int = MAX_FEATURES,
          columns: Any = None) -> Profile:
    """The regression's coefficients as one profile: base x scale + corrections.
    ``columns``: the design's column of each coefficient (None: all of them, in order)."""
    numpy = _libraries()[0]
    coef = model.coef_[0]
    if columns is not None:
        full = numpy.zeros(1 + len(DIMENSIONS) + (1 << bits))
        full[columns] = coef
        coef = full
    scale = float(coef[0]) * BASE_SCALE  # the base logit's coefficient, in logit units
    width = 1 + len(DIMENSIONS)
    weights = {d: scale * base.weights[d] + float(coef[i]) for i, d in enumerate(DIMENSIONS, start=1)}
    table: dict[int, float] = {}
    if base.text is not None:
        shift = base.text.bits - bits
        if shift < 0:
            raise LabelsError(f"the base profile's text part has {base.text.bits} bits; fit with at least that many")
        for index, value in zip(base.text.indices, base.text.weights):
            folded = index & ((1 << bits) - 1)
            table[folded] = table.get(folded, 0.0) + scale * value
    for index in coef[width:].nonzero()[0].tolist():
        table[index] = table.get(index, 0.0) + float(coef[width + index])
    weightiest = sorted(((i, v) for i, v in table.items() if abs(v) >= 1e-7), key=lambda iv: -abs(iv[1]))
    kept = sorted(weightiest[:max_features])
    text = TextPart.of(bits, [i for i, _ in kept], [v for _, v in kept]) if kept else None
    return Profile(name, float(model.intercept_[0]) + scale * base.bias, weights, text, {}, source="")


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

