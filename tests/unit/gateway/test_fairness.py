"""One user cannot take every slot of a tier: tiers.<tier>.max_in_flight_per_user."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import COMPLEX_PROMPT
from stratum_litellm.config import SettingsError, parse_settings
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.routing.rules import RequestMeta

SETTINGS: dict[str, Any] = {
    "gpu": {"enabled": False},
    "tiers": {"fast": {"model_group": "gemma4-fast"},
              "smart": {"model_group": "gemma4-smart", "max_in_flight_per_user": 2, "max_in_flight": 20}},
}


def ask(engine: RouterEngine, call_id: str, meta: RequestMeta) -> tuple[str, str]:
    body = {"model": "gemma4-auto", "litellm_call_id": call_id, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}
    decision = engine.route(body, meta)
    assert decision is not None
    return decision.tier, decision.label


def done(engine: RouterEngine, call_id: str) -> None:
    engine.observe({"litellm_call_id": call_id, "standard_logging_object": {"model_group": "gemma4-smart"}},
                   0.0, 0.5, ok=True)


def test_a_user_past_the_limit_goes_down_the_ladder_and_others_keep_their_share() -> None:
    engine = RouterEngine(parse_settings(SETTINGS))
    script, person = RequestMeta(end_user="script"), RequestMeta(end_user="alice")
    assert [ask(engine, f"s{i}", script) for i in range(2)] == [("smart", "complex")] * 2
    assert ask(engine, "s2", script) == ("fast", "smart_user_limit")
    assert ask(engine, "a0", person) == ("smart", "complex")
    done(engine, "s0")  # one of the script's requests finished: it has room again
    assert ask(engine, "s3", script) == ("smart", "complex")
    engine.close()


@pytest.mark.parametrize("by, meta, other", [
    ("key", RequestMeta(key="hash-1", end_user="a"), RequestMeta(key="hash-2", end_user="a")),
    ("header:x-openwebui-user-id", RequestMeta(headers={"x-openwebui-user-id": "u1"}),
     RequestMeta(headers={"x-openwebui-user-id": "u2"})),
    ("user", RequestMeta(user_id="gateway-user"), RequestMeta(user_id="another")),
])
def test_who_counts_as_one_user_is_configurable(by: str, meta: RequestMeta, other: RequestMeta) -> None:
    engine = RouterEngine(parse_settings({**SETTINGS, "fairness": {"by": by}}))
    for i in range(2):
        ask(engine, f"m{i}", meta)
    assert ask(engine, "m2", meta)[1] == "smart_user_limit"
    assert ask(engine, "o0", other) == ("smart", "complex")
    engine.close()


def test_a_request_with_no_identity_is_not_limited_and_says_so() -> None:
    engine = RouterEngine(parse_settings(SETTINGS))
    assert [ask(engine, f"n{i}", RequestMeta())[0] for i in range(4)] == ["smart"] * 4
    body = {"model": "gemma4-auto", "litellm_call_id": "n9", "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}
    decision = engine.route(body, RequestMeta())
    assert decision is not None and "no user" in str(decision.evidence["checks"]["user_share"])
    engine.close()


def test_a_bad_identity_source_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match="stratum.fairness.by"):
        parse_settings({**SETTINGS, "fairness": {"by": "cookie"}})
