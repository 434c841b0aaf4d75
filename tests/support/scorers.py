"""Stand-in scorers for tests that exercise the policy, not the scorer."""

from __future__ import annotations

from stratum_litellm.scoring.scorer import DIMENSIONS, Score
from stratum_litellm.scoring.view import RequestView


class FixedScorer:
    """Gives every request the same score (every dimension's part 0), so each rule and check
    is exercised on its own; the real scorer is tested in tests/unit/scoring."""

    def __init__(self, value: float) -> None:
        self.value = value

    def score(self, view: RequestView) -> Score:
        return Score(self.value, {d: 0.0 for d in DIMENSIONS})
