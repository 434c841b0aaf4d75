"""The score kernel: from a request's counts to its signals, parts and score.

The C kernel (built at install when a C compiler is present) must give exactly what the
Python reference gives, bit for bit, on any counts, weights and bias: the routing figures
and the operators' thresholds were measured with one and are served by the other.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_litellm.scoring import scorer as scoring
from stratum_litellm.scoring.scorer import DIMENSIONS, Scorer, _python_kernel, score_text
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.scoring.measure import FIELDS

try:
    from stratum_litellm.scoring._score_kernel import score as c_kernel
except ImportError:  # pragma: no cover - see test_bytescan.test_the_c_parts_are_built_where_a_compiler_is
    c_kernel = None

needs_c = pytest.mark.skipif(c_kernel is None, reason="the C kernel is not built (no C compiler at install)")

# Counts are non-negative: whole numbers from the scan, fractions once segments are weighted.
count = st.one_of(st.just(0), st.integers(0, 10**6), st.floats(0, 1e12, allow_nan=False),
                  st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 1e-300]))
counts = st.lists(count, min_size=len(FIELDS), max_size=len(FIELDS))
weights = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=len(DIMENSIONS), max_size=len(DIMENSIONS))


@needs_c
@settings(max_examples=2000, deadline=None)
@given(counts=counts, context=st.floats(0, 1), weights=weights, bias=st.floats(-200, 200))
def test_c_kernel_equals_python_kernel(counts: list[float], context: float, weights: list[float], bias: float) -> None:
    value, parts, signals = c_kernel(counts, context, tuple(weights), bias)
    expected = _python_kernel(counts, context, weights, bias)
    assert (value, list(parts), list(signals)) == (expected[0], list(expected[1]), list(expected[2]))
    assert 0.0 <= value <= 1.0


@needs_c
@pytest.mark.parametrize("args,error", [
    (([0.0] * (len(FIELDS) - 1), 0.0, (1.0,) * len(DIMENSIONS), 0.0), ValueError),  # a count missing
    (([0.0] * len(FIELDS), 0.0, (1.0,) * 3, 0.0), ValueError),
    ((["x"] * len(FIELDS), 0.0, (1.0,) * len(DIMENSIONS), 0.0), TypeError),
    (([0.0] * len(FIELDS), None, (1.0,) * len(DIMENSIONS), 0.0), TypeError),
    ((None, 0.0, (1.0,) * len(DIMENSIONS), 0.0), TypeError),
])
def test_c_kernel_refuses_bad_arguments(args: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        c_kernel(*args)


def test_scores_are_the_kernels_on_real_prompts() -> None:
    # Whichever kernel is in use, a scored prompt's value, parts and signals are the reference's.
    scorer = Scorer()
    for prompt in ("hi", "Prove that there are infinitely many primes, step by step.",
                   "A train leaves at 3 pm going 60 mph; a second leaves 2 hours later at 80 mph. When does it "
                   "catch up?", "def f(x):\n    return x ** 2\n# why is this slow?", "日本の首都はどこですか？"):
        score = score_text(prompt)
        view = scoring.RequestView.from_prompt(prompt)
        counts, context = scoring._counts(view), scoring._context(view)
        value, parts, signals = _python_kernel(counts, context, scorer._wlist, scorer.bias)
        assert score.value == value
        assert tuple(score.parts.values()) == parts and tuple(score.signals.values()) == signals
        assert math.isclose(score.value, 1 / (1 + math.exp(-(scorer.bias + sum(parts)))), rel_tol=1e-12)


needs_one_turn = pytest.mark.skipif(scoring._ONE_TURN is None, reason="the C parts are not built")
texts = st.text(max_size=300) | st.text(alphabet="How many 3 + 4 = 7? def f(): return x; \\frac{1}{2}\n", max_size=300)
# What a view's last_user_chars may hold: -1 (not cut), the length, more (cut), odd values.
full_chars = st.one_of(st.just(-1), st.integers(0, 10**6), st.integers(2**62, 2**70), st.none(), st.just(2.5e4))


@needs_one_turn
@settings(max_examples=600, deadline=None)
@given(text=texts, full=full_chars, weights=weights, bias=st.floats(-200, 200))
def test_one_plain_turn_scores_in_c_as_the_general_path_does(text: str, full: object, weights: list[float],
                                                            bias: float) -> None:
    # Scorer.score takes a single C call for a request of one plain turn; the general path
    # (counts of each segment, context, kernel) must give the same numbers, bit for bit.
    scorer = Scorer(dict(zip(DIMENSIONS, weights)))
    scorer._bias = bias
    view = RequestView(last_user=text, turns=1, total_chars=len(text), last_user_chars=full)  # type: ignore[arg-type]
    fast = scorer.score(view)
    try:
        scoring._ONE_TURN, saved = None, scoring._ONE_TURN
        general = scorer.score(view)
    finally:
        scoring._ONE_TURN = saved
    assert (fast.value, dict(fast.parts), dict(fast.signals)) == (general.value, dict(general.parts),
                                                                  dict(general.signals))
