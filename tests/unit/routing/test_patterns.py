"""Operator patterns that can backtrack catastrophically are refused when the config loads."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from stratum_litellm.routing.patterns import unsafe_reason
from stratum_litellm.config import SettingsError, parse_settings


@pytest.mark.parametrize("pattern", [r"(a+)+$", r"(.*)*", r"(\w+\s?)*x", r"([a-z]+)*!", r"(a{1,3})+b",
                                     r"(\d+x|\w)*", "x" * 1001])
def test_dangerous_patterns_are_refused(pattern: str) -> None:
    assert unsafe_reason(pattern) is not None
    with pytest.raises(SettingsError, match="rules.0.pattern"):
        parse_settings({"rules": [{"name": "r", "pattern": pattern, "route": "smart"}]})


@pytest.mark.parametrize("pattern", [r"\bcontract\b", r"(?i)\b(indemnity|liability)\b", r"\d{3}-\d{4}",
                                     r"^(prove|derive)\b.*$", r"(?:\s|,)+", r"(ab)+c", r"(a{3})+", r"[A-Z]{2,}\d+"])
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    assert unsafe_reason(pattern) is None
    parse_settings({"rules": [{"name": "r", "pattern": pattern, "route": "smart"}]})


@given(st.text(max_size=40))
def test_the_check_never_raises(pattern: str) -> None:
    result = unsafe_reason(pattern)
    assert result is None or isinstance(result, str)
