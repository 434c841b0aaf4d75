"""The LiteLLM glue in-process: hook discovery, and the SDK router against real HTTP backends."""

from __future__ import annotations

import asyncio
import time

import pytest

from servers import StubBackend
from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT


def test_every_hook_is_defined_on_the_handler_class_itself() -> None:
    # The gateway silently skips hooks a callback only inherits from CustomLogger.
    from stratum_litellm.gateway.plugin import StratumProxyHandler

    for hook in ("async_pre_call_hook", "async_log_success_event", "async_log_failure_event",
                 "async_post_call_response_headers_hook"):
        assert hook in StratumProxyHandler.__dict__, hook


def test_the_config_name_resolves_to_one_shared_handler() -> None:
    import stratum_litellm
    from litellm.integrations.custom_logger import CustomLogger

    handler = getattr(stratum_litellm, "proxy_handler")
    assert isinstance(handler, CustomLogger)
    assert getattr(stratum_litellm, "proxy_handler") is handler
    with pytest.raises(AttributeError):
        getattr(stratum_litellm, "no_such_thing")


def test_core_modules_do_not_import_litellm() -> None:
    import subprocess
    import sys

    code = ("import sys, stratum_litellm.cli, stratum_litellm.gateway.engine, stratum_litellm.gateway.metrics; "
            "print('litellm' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


async def test_sdk_router_routes_the_alias_and_learns_latency() -> None:
    from stratum_litellm.gateway.plugin import StratumRouter
    from stratum_litellm.config import parse_settings

    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart:
        model_list = [
            {"model_name": "gemma4-fast", "litellm_params": {"model": "openai/x", "api_base": fast.api_base, "api_key": "none"}},
            {"model_name": "gemma4-smart", "litellm_params": {"model": "openai/x", "api_base": smart.api_base, "api_key": "none"}},
        ]
        router = StratumRouter(model_list=model_list, stratum_settings=parse_settings({"gpu": {"enabled": False}}))
        try:
            reply = await router.acompletion(model="gemma4-auto", messages=[{"role": "user", "content": SIMPLE_PROMPT}])
            assert "fast-stub" in reply.choices[0].message.content
            smart.set_behaviour(ttft_ms=200)
            stream = await router.acompletion(model="gemma4-auto", stream=True,
                                              messages=[{"role": "user", "content": COMPLEX_PROMPT}])
            text = "".join([c.choices[0].delta.content or "" async for c in stream])
            assert "smart-stub" in text
            deadline = time.monotonic() + 10
            while router.stratum.signals.latency.tier("smart").samples == 0:
                assert time.monotonic() < deadline, "the SDK success callback never reached the router"
                await asyncio.sleep(0.1)
            lat = router.stratum.signals.latency.tier("smart")
            assert lat.ttft_ema_ms is not None and lat.ttft_ema_ms >= 150
            assert lat.in_flight == 0
            # SDK users get the gauges too, on prometheus-client's default registry.
            from prometheus_client import REGISTRY, generate_latest

            exposition = generate_latest(REGISTRY).decode()
            assert 'stratum_tier_latency_samples{tier="smart"} 1.0' in exposition, exposition[-2000:]
        finally:
            router.close()


async def test_two_sdk_routers_on_one_redis_share_a_tier_limit(redis_url: str) -> None:
    # The Router's own redis_host / redis_port are what the router shares its state in.
    from stratum_litellm.gateway.plugin import StratumRouter
    from stratum_litellm.config import parse_settings

    host, port = redis_url.removeprefix("redis://").split(":")
    settings = parse_settings({"gpu": {"enabled": False}, "latency": {"sla_ms": 120_000},
                               "tiers": {"fast": {"model_group": "gemma4-fast", "backend": "off"},
                                         "smart": {"model_group": "gemma4-smart", "max_in_flight": 1, "backend": "off"}},
                               "shared_state": {"mode": "required"}})
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart:
        model_list = [
            {"model_name": "gemma4-fast", "litellm_params": {"model": "openai/x", "api_base": fast.api_base, "api_key": "none"}},
            {"model_name": "gemma4-smart", "litellm_params": {"model": "openai/x", "api_base": smart.api_base, "api_key": "none"}},
        ]
        one, two = (StratumRouter(model_list=model_list, redis_host=host, redis_port=int(port),
                                  stratum_settings=settings) for _ in range(2))
        try:
            for router in (one, two):  # the first call starts each one's tick
                await router.acompletion(model="gemma4-auto", messages=[{"role": "user", "content": SIMPLE_PROMPT}])
            deadline = time.monotonic() + 10
            while not (one.stratum.signals.shared.up and two.stratum.signals.shared.up):  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the shared state never came up"
                await asyncio.sleep(0.05)
            smart.set_behaviour(ttft_ms=3000)
            held = asyncio.create_task(one.acompletion(
                model="gemma4-auto", messages=[{"role": "user", "content": COMPLEX_PROMPT}]))
            while not smart.requests():
                await asyncio.sleep(0.05)
            reply = await two.acompletion(model="gemma4-auto", messages=[{"role": "user", "content": COMPLEX_PROMPT}])
            assert "fast-stub" in reply.choices[0].message.content
            assert "smart-stub" in (await held).choices[0].message.content
        finally:
            one.close()
            two.close()


def test_an_sdk_router_without_redis_refuses_required_shared_state() -> None:
    from stratum_litellm.config import SettingsError, parse_settings
    from stratum_litellm.gateway.plugin import StratumRouter

    model_list = [{"model_name": g, "litellm_params": {"model": "openai/x", "api_base": "http://127.0.0.1:9/v1"}}
                  for g in ("gemma4-fast", "gemma4-smart")]
    with pytest.raises(SettingsError, match="shared_state.mode: 'required' needs a Redis"):
        StratumRouter(model_list=model_list, stratum_settings=parse_settings({"shared_state": {"mode": "required"}}))
