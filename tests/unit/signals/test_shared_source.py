"""Where a gateway config gives LiteLLM its Redis, and what shared_state.mode makes of it."""

from __future__ import annotations

import logging

import pytest

from stratum_litellm.config import SettingsError, parse_settings
from stratum_litellm.signals.shared import redis_source, shares_state


@pytest.mark.parametrize(("document", "environ", "expected"), [
    ({"router_settings": {"redis_host": "redis", "redis_port": 6379}}, {}, "router_settings.redis_host"),
    ({"router_settings": {"redis_url": "redis://redis:6379"}}, {}, "router_settings.redis_url"),
    ({"litellm_settings": {"cache": True, "cache_params": {"type": "redis", "host": "r"}}}, {},
     "litellm_settings.cache_params (type: redis)"),
    ({"litellm_settings": {"cache": True}}, {}, "litellm_settings.cache_params (type: redis)"),
    ({"general_settings": {"coordination_redis": {"host": "r"}}}, {}, "general_settings.coordination_redis"),
    ({"router_settings": {"redis_host": "os.environ/REDIS_HOST", "redis_port": "os.environ/REDIS_PORT"}},
     {"REDIS_HOST": "redis", "REDIS_PORT": "6379"}, "router_settings.redis_host"),
    ({}, {"REDIS_HOST": "r"}, "the REDIS_HOST environment variable"),
    ({}, {"REDIS_URL": "redis://r"}, "the REDIS_URL environment variable"),
    (None, {"REDIS_HOST": "r"}, "the REDIS_HOST environment variable"),
])
def test_every_way_litellm_is_given_a_redis_is_found(document: object, environ: dict, expected: str) -> None:
    assert redis_source(document, environ) == expected


@pytest.mark.parametrize("document", [
    {}, None, {"litellm_settings": {"cache": True, "cache_params": {"type": "local"}}},
    {"litellm_settings": {"cache": False, "cache_params": {"type": "redis"}}}, {"router_settings": {"num_retries": 2}},
    # The repository's own config names the variables; unset, there is no Redis.
    {"router_settings": {"redis_host": "os.environ/REDIS_HOST", "redis_port": "os.environ/REDIS_PORT"}},
    {"router_settings": {"redis_host": "redis"}},  # LiteLLM wants the port too
    "not a mapping",
])
def test_no_redis_is_none(document: object) -> None:
    assert redis_source(document, {}) is None


def test_auto_shares_when_there_is_redis_and_not_otherwise() -> None:
    settings = parse_settings({})
    assert shares_state(settings, "gw.yaml", "router_settings.redis_host", 1, "the gateway config")
    assert not shares_state(settings, "gw.yaml", None, 1, "the gateway config")


def test_off_never_shares() -> None:
    assert not shares_state(parse_settings({"shared_state": {"mode": "off"}}), "gw.yaml", "router_settings.redis_host",
                            1, "the gateway config")


def test_required_without_redis_refuses_naming_the_key_and_the_file() -> None:
    with pytest.raises(SettingsError) as refused:
        shares_state(parse_settings({"shared_state": {"mode": "required"}}), "/etc/gw.yaml", None, 1,
                     "the gateway config")
    assert "/etc/gw.yaml" in str(refused.value) and "stratum.shared_state.mode" in str(refused.value)
    assert "router_settings.redis_host" in str(refused.value)


def test_several_workers_without_shared_state_are_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="stratum_litellm"):
        shares_state(parse_settings({}), "gw.yaml", None, 4, "the gateway config")
    assert "4 gateway workers run without shared state" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="stratum_litellm"):
        shares_state(parse_settings({}), "gw.yaml", None, 1, "the gateway config")
    assert not caplog.text


def test_a_lease_must_outlive_a_late_renewal() -> None:
    with pytest.raises(SettingsError) as refused:
        parse_settings({"shared_state": {"sync_interval_s": 1.0, "lease_ttl_s": 1.5}})
    assert "stratum.shared_state" in str(refused.value) and "lease_ttl_s must be at least twice" in str(refused.value)
