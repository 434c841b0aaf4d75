"""BackendTarget and BackendLoad: the URL a target polls, and when a load counts as saturated."""

from __future__ import annotations

from typing import Any

import pytest

from stratum_litellm.signals.backends import BackendLoad, BackendTarget
from stratum_litellm.signals.status import Status


def test_target_url_is_normalised() -> None:
    assert BackendTarget("vllm", " http://10.0.0.2:8000/v1/ ").url == "http://10.0.0.2:8000"
    assert BackendTarget("vllm", "https://gpu.example/base").url == "https://gpu.example/base"


def load(**fields: Any) -> BackendLoad:
    base: dict[str, Any] = dict(
        kind="llamacpp", url="http://h:1", status="ok", error=None, requests_running=None,
        requests_waiting=None, kv_cache_usage=None, slots_total=None, slots_idle=None,
        model_loaded=True, taken_at=1.0,
    )
    base.update(fields)
    return BackendLoad(**base)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),  # nothing read: no evidence either way
        ({"requests_waiting": 0}, False),
        ({"requests_waiting": 2}, True),
        ({"slots_total": 2, "slots_idle": 1}, False),
        ({"slots_total": 2, "slots_idle": 0}, True),
        ({"kv_cache_usage": 0.5}, False),
        ({"kv_cache_usage": 0.95}, True),
        ({"kv_cache_usage": 0.97, "kv_cache_saturation": 0.99}, False),
        ({"requests_waiting": 0, "slots_idle": 0}, True),  # any "yes" wins
        ({"status": "down", "requests_waiting": 3}, None),
        ({"status": "loading", "slots_idle": 0}, None),
        ({"status": "unknown"}, None),
    ],
)
def test_saturated(fields: dict[str, Any], expected: bool | None) -> None:
    assert load(**fields).saturated is expected


def test_status_given_as_text_is_the_shared_status() -> None:
    assert load(status="down").status is Status.DOWN
    assert BackendLoad.blank(BackendTarget("vllm", "http://h:1"), "not polled yet").status is Status.UNKNOWN
