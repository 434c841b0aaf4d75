"""AUROC and APGR, as the fit and the gateway's agreement gauge measure profiles: small cases
worked by hand, ties as blocks (a constant score is 0.5 on both), and the properties that
make them figures of a ranking (order of items, scale of weights)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from stratum_litellm.learning.quality import apgr, auroc

# --------------------------------------------------------------------------- by hand


def test_auroc_is_the_share_of_positive_negative_pairs_ranked_right() -> None:
    # Positives 0.9 and 0.3, negatives 0.8 and 0.1: of the 4 pairs, 0.3 < 0.8 is the one wrong.
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, False, True, False]) == 0.75
    assert auroc([0.1, 0.2, 0.3], [True, False, False]) == 0.0


def test_auroc_counts_a_tie_as_half() -> None:
    # Positive 1 ties negative 1 (1/2) and beats negative 0 (1): 1.5 of 2 pairs.
    assert auroc([1.0, 1.0, 0.0], [True, False, False]) == 0.75


def test_auroc_weighs_each_pair_by_both_weights() -> None:
    # Positives 0.9 (w 1) and 0.1 (w 3), negative 0.5 (w 2): only the first pair is right,
    # 1*2 of (1+3)*2.
    assert auroc([0.9, 0.5, 0.1], [True, False, True], [1.0, 2.0, 3.0]) == 0.25


def test_apgr_by_hand() -> None:
    # One needs the strong tier, one does not. Sending the share x of requests (highest
    # scores first) to the strong tier recovers the gap as the curve 0 -> 1 over [0, 0.5]
    # when the positive comes first, then flat: its mean over x is 0.75.
    assert apgr([0.9, 0.1], [True, False]) == pytest.approx(0.75)
    # Reversed, the gap is recovered only over [0.5, 1]: 0.25.
    assert apgr([0.1, 0.9], [True, False]) == pytest.approx(0.25)
    # Three items, one positive ranked second: recovered over [1/3, 2/3], mean 1/2.
    assert apgr([0.9, 0.5, 0.1], [False, True, False]) == pytest.approx(0.5)


def test_apgr_with_qualities_given() -> None:
    # Strong always 1; weak answers of quality 0.2 and 0.6: gains 0.8 and 0.4 (halved by the
    # share). Best first: the curve climbs 0.4 over [0, 0.5] then 0.2 over [0.5, 1].
    # Area above the weak-only line: 0.5 * 0.2 + 0.5 * (0.4 + 0.1) = 0.35, of a gap of 0.6.
    assert apgr([0.9, 0.1], [True, True], weak=[0.2, 0.6], strong=[1.0, 1.0]) == pytest.approx(0.35 / 0.6)


def test_a_perfect_ranking() -> None:
    scores = [0.9, 0.8, 0.7, 0.2, 0.1]
    labels = [True, True, False, False, False]
    assert auroc(scores, labels) == 1.0
    # APGR of a perfect ranking: the whole gap is recovered once the share of positives p
    # goes to the strong tier, so its mean over every share is 1 - p / 2 (no ranking does better).
    p = 2 / 5
    assert apgr(scores, labels) == pytest.approx(1 - p / 2)


@pytest.mark.parametrize("labels", [[True, False], [False, True, False], [True, True, False, True, False, False]])
def test_a_constant_score_is_exactly_one_half_on_both(labels: list[bool]) -> None:
    scores = [0.42] * len(labels)
    assert auroc(scores, labels) == pytest.approx(0.5, abs=1e-12)
    assert apgr(scores, labels) == pytest.approx(0.5, abs=1e-12)


def test_without_both_kinds_there_is_nothing_to_measure() -> None:
    assert math.isnan(auroc([0.1, 0.9], [True, True]))
    assert math.isnan(auroc([0.1, 0.9], [False, False]))
    assert math.isnan(auroc([], []))
    assert math.isnan(auroc([0.1, 0.9], [True, False], [0.0, 1.0]))  # a class of weight 0 is absent
    assert math.isnan(apgr([0.1, 0.9], [False, False]))  # the strong tier gains nothing
    assert math.isnan(apgr([], []))


def test_apgr_with_only_positives_is_a_ranking_of_equal_gains() -> None:
    # Every request gains the same: any order recovers the gap linearly, 0.5.
    assert apgr([0.9, 0.5, 0.1], [True, True, True]) == pytest.approx(0.5)


# --------------------------------------------------------------------------- properties

item = st.tuples(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.75, 1.0]) | st.floats(-10, 10, allow_nan=False),
                 st.booleans(), st.floats(0.01, 100))
items = st.lists(item, min_size=2, max_size=40)


def both_kinds(found: list[tuple[float, bool, float]]) -> bool:
    return any(y for _, y, _ in found) and not all(y for _, y, _ in found)


def columns(found: list[tuple[float, bool, float]]) -> tuple[list[float], list[bool], list[float]]:
    return [s for s, _, _ in found], [y for _, y, _ in found], [w for _, _, w in found]


@settings(max_examples=150)
@given(found=items, seed=st.integers(0, 2**32 - 1))
def test_the_order_of_the_items_does_not_matter(found: list[tuple[float, bool, float]], seed: int) -> None:
    assume(both_kinds(found))
    shuffled = found[:]
    random.Random(seed).shuffle(shuffled)
    a, b = columns(found), columns(shuffled)
    assert auroc(*b) == pytest.approx(auroc(*a), abs=1e-9)
    assert apgr(*b) == pytest.approx(apgr(*a), abs=1e-9)


@settings(max_examples=150)
@given(found=items)
def test_both_figures_are_in_the_unit_interval(found: list[tuple[float, bool, float]]) -> None:
    assume(both_kinds(found))
    scores, labels, weights = columns(found)
    # (to rounding: sums of float weights)
    assert -1e-12 <= auroc(scores, labels, weights) <= 1.0 + 1e-12
    assert -1e-12 <= auroc(scores, labels) <= 1.0 + 1e-12
    assert -1e-12 <= apgr(scores, labels, weights) <= 1.0 + 1e-12


@settings(max_examples=150)
@given(found=items, scale=st.floats(1e-3, 1e3))
def test_scaling_every_weight_changes_nothing(found: list[tuple[float, bool, float]], scale: float) -> None:
    assume(both_kinds(found))
    scores, labels, weights = columns(found)
    scaled = [w * scale for w in weights]
    assert auroc(scores, labels, scaled) == pytest.approx(auroc(scores, labels, weights), abs=1e-9)
    assert apgr(scores, labels, scaled) == pytest.approx(apgr(scores, labels, weights), abs=1e-9)


@settings(max_examples=200)
@given(found=st.lists(st.tuples(st.sampled_from([0.0, 0.5, 1.0, 2.0]), st.booleans(), st.integers(1, 4)),
                      min_size=2, max_size=20))
def test_a_weight_counts_as_that_many_copies(found: list[tuple[float, bool, int]]) -> None:
    assume(any(y for _, y, _ in found) and not all(y for _, y, _ in found))
    copies = [(s, y) for s, y, n in found for _ in range(n)]
    weighted = ([s for s, _, _ in found], [y for _, y, _ in found], [float(n) for _, _, n in found])
    repeated = ([s for s, _ in copies], [y for _, y in copies])
    assert auroc(*weighted) == pytest.approx(auroc(*repeated), abs=1e-9)
    assert apgr(*weighted) == pytest.approx(apgr(*repeated), abs=1e-9)


@settings(max_examples=200)
@given(found=items)
def test_a_monotone_rescaling_of_the_scores_changes_nothing(found: list[tuple[float, bool, float]]) -> None:
    assume(both_kinds(found))
    scores, labels, weights = columns(found)
    squashed = [1 / (1 + math.exp(-s)) for s in scores]  # the logit and the value rank alike
    assume(len(set(squashed)) == len(set(scores)))  # no two scores rounded into one
    assert auroc(squashed, labels, weights) == pytest.approx(auroc(scores, labels, weights), abs=1e-9)
    assert apgr(squashed, labels, weights) == pytest.approx(apgr(scores, labels, weights), abs=1e-9)


@settings(max_examples=200)
@given(found=items)
def test_reversing_the_scores_mirrors_the_auroc(found: list[tuple[float, bool, float]]) -> None:
    assume(both_kinds(found))
    scores, labels, weights = columns(found)
    assert auroc([-s for s in scores], labels, weights) == pytest.approx(1 - auroc(scores, labels, weights), abs=1e-9)


@settings(max_examples=200)
@given(found=items, data=st.data())
def test_a_perfect_ranking_is_the_best_ranking(found: list[tuple[float, bool, float]], data: st.DataObject) -> None:
    assume(both_kinds(found))
    scores, labels, weights = columns(found)
    perfect = [1.0 if y else 0.0 for y in labels]
    assert auroc(perfect, labels, weights) == pytest.approx(1.0, abs=1e-12)
    assert apgr(scores, labels, weights) <= apgr(perfect, labels, weights) + 1e-9
    positives = sum(w for w, y in zip(weights, labels) if y) / sum(weights)
    assert apgr(perfect, labels, weights) == pytest.approx(1 - positives / 2, abs=1e-9)


@settings(max_examples=200)
@given(found=items)
def test_a_tie_block_is_the_mean_of_its_orders(found: list[tuple[float, bool, float]]) -> None:
    """Equal scores are routed in random order: the figure of a tied block is the mean over
    its orders. Breaking every tie both ways (positives first, then last) brackets it, and
    for AUROC the tie is exactly the mean of the two."""
    assume(both_kinds(found))
    scores, labels, weights = columns(found)
    eps = 1e-6 * (1 + max(abs(s) for s in scores))
    distinct = sorted(set(scores))
    assume(all(b - a > 4 * eps for a, b in zip(distinct, distinct[1:])))
    up = [s + (eps if y else 0.0) for s, y in zip(scores, labels)]
    down = [s - (eps if y else 0.0) for s, y in zip(scores, labels)]
    for figure in (auroc, apgr):
        tied, best, worst = figure(scores, labels, weights), figure(up, labels, weights), figure(down, labels, weights)
        assert worst - 1e-9 <= tied <= best + 1e-9
    assert auroc(scores, labels, weights) == pytest.approx(
        (auroc(up, labels, weights) + auroc(down, labels, weights)) / 2, abs=1e-9)
