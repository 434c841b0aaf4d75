"""The engine on plain request bodies and callback keyword arguments (no LiteLLM needed)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings as hsettings, strategies as st

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.gateway.record import METADATA_KEY
from stratum_litellm.config import StratumSettings


def engine() -> RouterEngine:
    return RouterEngine(StratumSettings())


def body(content: Any, model: str = "gemma4-auto", call_id: str = "c1") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "litellm_call_id": call_id}


def test_routes_rewrites_the_model_and_records_the_decision() -> None:
    e = engine()
    data = body(SIMPLE_PROMPT)
    d = e.route(data)
    assert d is not None and data["model"] == "gemma4-fast"
    assert data["metadata"][METADATA_KEY]["reason"] == "simple"
    data = body(COMPLEX_PROMPT, call_id="c2")
    assert e.route(data).tier == "smart" and data["model"] == "gemma4-smart"
    assert e.signals.latency.in_flight("smart") == 1


def test_foreign_models_are_left_alone() -> None:
    data = body("hello", model="gpt-4o")
    assert engine().route(data) is None
    assert data == body("hello", model="gpt-4o")


def test_callbacks_feed_the_tier_that_served_with_ttft_for_streams() -> None:
    e = engine()
    data = body(COMPLEX_PROMPT, call_id="s1")
    e.route(data)
    start = datetime(2026, 1, 1, 12, 0, 0)
    kwargs = {
        "litellm_call_id": "s1",
        "stream": True,
        "completion_start_time": start + timedelta(milliseconds=300),
        "standard_logging_object": {"model_group": "gemma4-smart"},
    }
    assert e.observe(kwargs, start, start + timedelta(seconds=2), ok=True) == "smart"
    lat = e.signals.latency.tier("smart")
    assert lat.ttft_ema_ms == 300.0 and lat.total_ema_ms == 2000.0 and lat.in_flight == 0
    # A non-streamed reply has no separate first token.
    e.observe({"standard_logging_object": {"model_group": "gemma4-fast"}, "stream": False,
               "completion_start_time": start + timedelta(seconds=1)}, start, start + timedelta(seconds=1), ok=True)
    assert e.signals.latency.tier("fast").ttft_ema_ms is None


def test_internal_errors_fail_open_to_the_fallback_tier() -> None:
    e = engine()
    e.signals = None  # type: ignore[assignment]  # a broken router state
    data = body(COMPLEX_PROMPT)
    d = e.route(data)
    assert d is not None and d.reason == "router_error" and data["model"] == "gemma4-fast"
    # Forced requests still pass untouched.
    data = body(COMPLEX_PROMPT, model="gemma4-smart")
    e.route(data)
    assert data["model"] == "gemma4-smart"
    assert e.error_count == 2
    assert e.observe({"litellm_call_id": "x"}, 0.0, 1.0, ok=True) is None  # never raises


junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@hsettings(max_examples=300, deadline=None)
@given(messages=junk, extra=st.dictionaries(st.sampled_from(["tools", "functions", "prompt", "metadata", "input"]), junk))
def test_any_request_body_for_the_alias_gets_a_tier(messages: Any, extra: dict[str, Any]) -> None:
    data = {"model": "gemma4-auto", "messages": messages, **extra}
    e = engine()
    d = e.route(data)
    assert d is not None
    assert data["model"] in {"gemma4-fast", "gemma4-smart"}
    # Routed on its content, not through the error fallback.
    assert d.reason in {"simple", "complex"} and e.error_count == 0


@given(kwargs=st.dictionaries(st.sampled_from(["litellm_call_id", "stream", "completion_start_time",
                                               "standard_logging_object", "litellm_params"]), junk),
       start=junk, end=junk, ok=st.booleans())
def test_any_callback_arguments_are_survived(kwargs: dict[str, Any], start: Any, end: Any, ok: bool) -> None:
    e = engine()
    e.observe(kwargs, start, end, ok)
    assert e.error_count == 0
    for tier in ("fast", "smart"):
        lat = e.signals.latency.tier(tier)
        for value in (lat.ttft_ema_ms, lat.total_ema_ms):
            assert value is None or 0.0 <= value < float("inf")
