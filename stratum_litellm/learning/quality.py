"""How well scores rank labels: AUROC and APGR, as the routing-quality harness measures them.

Both treat equal scores as one block routed in random order (the expectation over the
order), so a constant score gets AUROC 0.5 and APGR 0.5 exactly. Plain Python: the gateway
measures its profile's agreement with recent labels without numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["apgr", "auroc"]


def _blocks(scores: Sequence[float]) -> list[list[int]]:
    """Indices grouped by equal score, highest score first."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    blocks: list[list[int]] = []
    for i in order:
        if blocks and scores[blocks[-1][0]] == scores[i]:
            blocks[-1].append(i)
        else:
            blocks.append([i])
    return blocks


def auroc(scores: Sequence[float], labels: Sequence[bool], weights: Sequence[float] | None = None) -> float:
    """The chance that a positive scores above a negative (ties count one half); NaN
    without both kinds."""
    w = weights if weights is not None else [1.0] * len(scores)
    pos_total = sum(wi for wi, y in zip(w, labels) if y)
    neg_total = sum(wi for wi, y in zip(w, labels) if not y)
    if pos_total <= 0 or neg_total <= 0:
        return math.nan
    area = 0.0
    neg_above = 0.0
    for block in _blocks(scores):  # highest first: negatives already passed score above
        pos = sum(w[i] for i in block if labels[i])
        neg = sum(w[i] for i in block if not labels[i])
        area += pos * (neg_total - neg_above - neg) + 0.5 * pos * neg
        neg_above += neg
    return min(1.0, max(0.0, area / (pos_total * neg_total)))  # (rounding of weighted sums)


def apgr(scores: Sequence[float], labels: Sequence[bool], weights: Sequence[float] | None = None,
         weak: Sequence[float] | None = None, strong: Sequence[float] | None = None) -> float:
    """Share of the weak-to-strong quality gap recovered, averaged over every share of
    requests sent to the strong tier (highest scores first). Without qualities a label
    gives them: the strong tier's answer is good (1), the weak one's is good unless it
    needed the strong tier. NaN when the strong tier gains nothing."""
    n = len(scores)
    w = list(weights) if weights is not None else [1.0] * n
    weak_q = list(weak) if weak is not None else [0.0 if y else 1.0 for y in labels]
    strong_q = list(strong) if strong is not None else [1.0] * n
    total = sum(w)
    if n == 0 or total <= 0:
        return math.nan
    gain = [(s - q) * wi / total for s, q, wi in zip(strong_q, weak_q, w)]
    weak_only = sum(q * wi for q, wi in zip(weak_q, w)) / total
    strong_only = weak_only + sum(gain)
    if strong_only <= weak_only:
        return math.nan
    # The curve is linear across each block; its area is the trapezoid sum.
    area = 0.0
    x = y = 0.0
    y = weak_only
    for block in _blocks(scores):
        dx = sum(w[i] for i in block) / total
        dy = sum(gain[i] for i in block)
        area += dx * (y + dy / 2)
        x += dx
        y += dy
    return (area - weak_only) / (strong_only - weak_only)
