"""Shadow mode on plain request bodies: decided and reported, never applied (no LiteLLM needed)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings as hsettings, strategies as st
from prometheus_client import REGISTRY

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stratum_litellm.config import StratumSettings
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.gateway.record import METADATA_KEY


def body(content: Any, model: str = "gemma4-auto", call_id: str = "c1") -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "litellm_call_id": call_id}


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_default_mode_is_route() -> None:
    assert StratumSettings().mode == "route"


def test_shadow_keeps_the_model_and_records_what_route_would_have_done() -> None:
    e = RouterEngine(StratumSettings(mode="shadow"))
    shadow_before = counted("stratum_shadow_decisions_total", tier="smart", reason="complex")
    applied_before = counted("stratum_decisions_total", tier="smart", reason="complex")
    data = body(COMPLEX_PROMPT)
    decision = e.route(data)
    assert decision is not None and decision.tier == "smart"
    assert data["model"] == "gemma4-auto"
    record = data["metadata"][METADATA_KEY]
    assert (record["tier"], record["model_group"], record["reason"], record["mode"]) == (
        "smart", "gemma4-smart", "complex", "shadow")
    # Nothing runs on the smart tier, so nothing is in flight there.
    assert e.signals.latency.in_flight("smart") == 0
    assert counted("stratum_shadow_decisions_total", tier="smart", reason="complex") == shadow_before + 1
    assert counted("stratum_decisions_total", tier="smart", reason="complex") == applied_before


def test_route_mode_marks_its_records_as_applied() -> None:
    data = body(SIMPLE_PROMPT)
    RouterEngine(StratumSettings()).route(data)
    assert data["model"] == "gemma4-fast" and data["metadata"][METADATA_KEY]["mode"] == "route"


def test_a_forced_tier_in_shadow_is_applied_as_asked() -> None:
    e = RouterEngine(StratumSettings(mode="shadow"))
    data = body(SIMPLE_PROMPT, model="gemma4-smart")
    assert e.route(data).reason == "forced"
    assert data["model"] == "gemma4-smart" and data["metadata"][METADATA_KEY]["mode"] == "route"
    assert e.signals.latency.in_flight("smart") == 1


def test_a_router_error_in_shadow_still_leaves_the_model_alone() -> None:
    e = RouterEngine(StratumSettings(mode="shadow"))
    data = body(COMPLEX_PROMPT)
    e.fail_open(data, RuntimeError("boom"), "pre_call_hook")
    assert data["model"] == "gemma4-auto"
    assert data["metadata"][METADATA_KEY]["reason"] == "router_error"


def test_applying_settings_switches_shadow_to_route_without_a_new_engine() -> None:
    e = RouterEngine(StratumSettings(mode="shadow"))
    data = body(COMPLEX_PROMPT)
    e.route(data)
    assert data["model"] == "gemma4-auto"
    e.apply_settings(StratumSettings(mode="route"))
    data = body(COMPLEX_PROMPT, call_id="c2")
    e.route(data)
    assert data["model"] == "gemma4-smart"


@hsettings(max_examples=150, deadline=None)
@given(content=st.text(max_size=400), model=st.sampled_from(["gemma4-auto", "gemma4-fast", "gemma4-smart", "gpt-4o"]))
def test_shadow_never_changes_the_model_a_client_asked_for(content: str, model: str) -> None:
    data = body(content, model=model)
    RouterEngine(StratumSettings(mode="shadow")).route(data)
    assert data["model"] == model


def test_a_bad_mode_is_refused_naming_the_key_the_file_and_the_choices(tmp_path) -> None:
    import pytest

    from stratum_litellm.config import SettingsError, load_settings

    path = tmp_path / "stratum.yaml"
    path.write_text("stratum:\n  mode: shadowing\n")
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    message = str(err.value)
    assert "mode" in message and str(path) in message and "shadow" in message
