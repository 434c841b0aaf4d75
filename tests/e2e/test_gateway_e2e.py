"""End to end: a real LiteLLM gateway process, the repository's own litellm_config.yaml and
the plugin, in front of real llama.cpp servers (SmolLM2-135M on CPU) on 127.0.0.1, driven
by the OpenAI Python client. The stub backend stands in only where a test needs a stall or
an error on demand."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from gateway import Gateway
from process import free_port
from rules_for_tests import BREAK_WORD
from servers import LlamaServer, StubBackend
from waiting import wait_until


def ask(gw: Gateway, content: object, model: str = "gemma4-auto", **kw: object):
    raw = gw.client().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], max_tokens=8, **kw
    )
    return raw.headers, raw.parse()


def processed_tokens(server: LlamaServer) -> float:
    text = httpx.get(f"{server.base_url}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith("llamacpp:prompt_tokens_total"):
            return float(line.split()[-1])
    raise AssertionError("llama-server /metrics has no llamacpp:prompt_tokens_total")


# SmolLM2 on a shared 2-core CPU can take seconds per answer: a generous SLA keeps these
# tests about routing; the SLA itself is tested below against a backend that stalls on demand.
ROUTING_ONLY = {"latency": {"sla_ms": 120_000}}


@pytest.fixture(scope="module")
def gateway(llama_fast: LlamaServer, llama_smart: LlamaServer) -> Iterator[Gateway]:
    with Gateway(llama_fast.api_base, llama_smart.api_base, stratum=ROUTING_ONLY) as gw:
        yield gw


def test_the_gateway_lists_the_alias_and_both_tiers(gateway: Gateway) -> None:
    ids = {m.id for m in gateway.client().models.list()}
    assert {"gemma4-auto", "gemma4-fast", "gemma4-smart"} <= ids


def test_simple_goes_to_the_fast_server_and_complex_to_the_smart_one(
    gateway: Gateway, llama_fast: LlamaServer, llama_smart: LlamaServer
) -> None:
    fast_before, smart_before = processed_tokens(llama_fast), processed_tokens(llama_smart)
    headers, reply = ask(gateway, SIMPLE_PROMPT)
    assert headers["x-litellm-model-group"] == "gemma4-fast"
    assert (headers["x-stratum-tier"], headers["x-stratum-reason"]) == ("fast", "simple")
    assert reply.choices[0].message.content
    assert processed_tokens(llama_fast) > fast_before
    assert processed_tokens(llama_smart) == smart_before

    headers, reply = ask(gateway, COMPLEX_PROMPT)
    assert headers["x-litellm-model-group"] == "gemma4-smart"
    assert headers["x-stratum-tier"] == "smart"
    assert float(headers["x-stratum-score"]) >= 0.65
    assert reply.choices[0].message.content
    assert processed_tokens(llama_smart) > smart_before


def test_forced_tiers_pass_untouched(gateway: Gateway) -> None:
    headers, _ = ask(gateway, COMPLEX_PROMPT, model="gemma4-fast")
    assert headers["x-litellm-model-group"] == "gemma4-fast"
    assert headers["x-stratum-reason"] == "forced"
    headers, _ = ask(gateway, SIMPLE_PROMPT, model="gemma4-smart")
    assert headers["x-litellm-model-group"] == "gemma4-smart"
    assert headers["x-stratum-reason"] == "forced"


def test_streaming_is_routed_and_feeds_time_to_first_token(gateway: Gateway) -> None:
    samples_before = gateway.metric("stratum_tier_latency_samples", tier="smart") or 0.0
    started = time.monotonic()
    raw = gateway.client().chat.completions.with_raw_response.create(
        model="gemma4-auto", messages=[{"role": "user", "content": COMPLEX_PROMPT}], max_tokens=24,
        stream=True, stream_options={"include_usage": True},
    )
    assert raw.headers["x-litellm-model-group"] == "gemma4-smart"
    chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    elapsed = time.monotonic() - started
    assert text.strip()
    # The success callback runs after the stream ends; give it a moment.
    deadline = time.monotonic() + 10
    while (gateway.metric("stratum_tier_latency_samples", tier="smart") or 0.0) <= samples_before:
        assert time.monotonic() < deadline, "no latency sample reached the router"
        time.sleep(0.2)
    ttft = gateway.metric("stratum_tier_latency_ema_seconds", tier="smart", measure="ttft")
    total = gateway.metric("stratum_tier_latency_ema_seconds", tier="smart", measure="total")
    assert ttft is not None and total is not None
    # The first stream this gateway saw: its time to first token is the whole EMA, and it
    # is shorter than the stream took end to end (it is not the total time).
    assert 0.0 < ttft < elapsed


def test_decisions_are_counted_on_the_gateway_metrics(gateway: Gateway) -> None:
    before = gateway.metric("stratum_decisions_total", tier="fast", reason="simple") or 0.0
    ask(gateway, SIMPLE_PROMPT)
    assert gateway.metric("stratum_decisions_total", tier="fast", reason="simple") == before + 1
    assert gateway.metric("stratum_gpu_known", gpu="0") == 0.0  # no GPU here: unknown, not invented


# -- behaviours only a controllable backend gives on demand --------------------------------

# The probe interval must outlast a callback's delay (about 3 s after a stream ends) plus the
# next request on a busy 2-core machine, or the request meant to be held off is already the probe.
SLOW_SETTINGS = {"latency": {"sla_ms": 600, "probe_interval_s": 12, "failure_threshold": 2, "cooldown_s": 3}}


@pytest.fixture()
def stub_gateway(stub_fast: StubBackend, stub_smart: StubBackend) -> Iterator[Gateway]:
    with Gateway(stub_fast.api_base, stub_smart.api_base, stratum=SLOW_SETTINGS) as gw:
        yield gw


@pytest.fixture(scope="module")
def shared_stub_gateway() -> Iterator[Gateway]:
    """One gateway for the tests that only read decisions and change no router state."""
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart:
        with Gateway(fast.api_base, smart.api_base) as gw:
            yield gw


def stream_once(gw: Gateway, content: str, model: str = "gemma4-auto") -> tuple[str, str]:
    raw = gw.client().chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}], stream=True, max_tokens=8,
    )
    for _ in raw.parse():
        pass
    return raw.headers["x-litellm-model-group"], raw.headers["x-stratum-reason"]


def wait_for_samples(gw: Gateway, tier: str, at_least: float) -> None:
    deadline = time.monotonic() + 10
    while (gw.metric("stratum_tier_latency_samples", tier=tier) or 0.0) < at_least:
        assert time.monotonic() < deadline, "callback never reached the router"
        time.sleep(0.1)


def test_a_slow_smart_tier_sends_complex_requests_fast_then_gets_them_back(
    stub_gateway: Gateway, stub_smart: StubBackend
) -> None:
    stub_smart.set_behaviour(ttft_ms=1500)
    assert stream_once(stub_gateway, COMPLEX_PROMPT) == ("gemma4-smart", "complex")
    wait_for_samples(stub_gateway, "smart", 1)
    # Time to first token (1.5 s) is above the 600 ms SLA: new complex requests go fast.
    assert stream_once(stub_gateway, COMPLEX_PROMPT) == ("gemma4-fast", "latency_sla")
    stub_smart.set_behaviour(ttft_ms=0)
    # Half-open: after the probe interval one request probes the smart tier ...
    deadline = time.monotonic() + 40
    while True:
        group, reason = stream_once(stub_gateway, COMPLEX_PROMPT)
        if reason == "sla_probe":
            assert group == "gemma4-smart"
            break
        assert reason == "latency_sla" and time.monotonic() < deadline
        time.sleep(0.5)
    wait_for_samples(stub_gateway, "smart", 2)
    # ... and once it answered fast, the smart tier is back.
    assert stream_once(stub_gateway, COMPLEX_PROMPT) == ("gemma4-smart", "complex")


def test_a_failing_smart_tier_falls_back_and_then_is_avoided(stub_gateway: Gateway, stub_smart: StubBackend,
                                                            stub_fast: StubBackend) -> None:
    stub_smart.set_behaviour(fail=True)
    # Forced smart requests fail over to the fast tier through LiteLLM's fallback.
    for _ in range(2):
        _, reply = ask(stub_gateway, SIMPLE_PROMPT, model="gemma4-smart")
        assert "fast-stub" in reply.choices[0].message.content
    # Two failures in a row: routed complex requests avoid the smart tier meanwhile.
    deadline = time.monotonic() + 10
    while True:
        headers, reply = ask(stub_gateway, COMPLEX_PROMPT)
        if headers["x-stratum-reason"] == "smart_unhealthy":
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert headers["x-litellm-model-group"] == "gemma4-fast"
    assert "fast-stub" in reply.choices[0].message.content


HUGE = "The quick brown fox jumps over the lazy dog. " * 20_000  # ~900 k characters

ODD_CONTENTS = {
    "image": [{"type": "text", "text": "What is in this picture?"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}],
    "empty": "",
    "huge": HUGE,
    "cjk": "请详细证明费马大定理在n等于3时成立，并比较不同的证明方法。" * 10,
    "emoji_rtl": "مرحبا 👋🏽 \u202e hello \x00\x07",
}


@pytest.mark.parametrize("name", sorted(ODD_CONTENTS))
def test_odd_content_is_still_routed(shared_stub_gateway: Gateway, name: str) -> None:
    headers, reply = ask(shared_stub_gateway, ODD_CONTENTS[name])
    assert headers["x-stratum-tier"] in {"fast", "smart"}
    assert headers["x-stratum-reason"] in {"simple", "complex"}
    assert reply.choices[0].message.content


def test_tool_calls_and_a_conversation_are_routed(shared_stub_gateway: Gateway) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp_c\": 18}"},
        {"role": "user", "content": "And should I take a coat?"},
    ]
    raw = shared_stub_gateway.client().chat.completions.with_raw_response.create(
        model="gemma4-auto", messages=messages, tools=tools, max_tokens=8)
    assert raw.headers["x-stratum-tier"] in {"fast", "smart"}
    assert raw.parse().choices[0].message.content


@pytest.mark.parametrize("body", [
    {},                                   # no messages at all
    {"messages": []},                     # an empty conversation
    {"messages": "hello"},                # not a list
    {"messages": [{"role": "user"}]},     # a message without content
    {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]}]},
])
def test_malformed_bodies_are_routed_and_never_a_500(shared_stub_gateway: Gateway, body: dict) -> None:
    gw = shared_stub_gateway
    r = httpx.post(f"{gw.base_url}/v1/chat/completions", headers={"Authorization": f"Bearer {gw.client().api_key}"},
                   json={"model": "gemma4-auto", **body}, timeout=30)
    # The router routed it (the gateway itself may still refuse a body it cannot serve).
    assert r.headers["x-stratum-tier"] == "fast" and r.headers["x-stratum-reason"] == "simple"
    if r.status_code == 500 and "messages" not in body:
        # Older LiteLLM releases of the range (1.94.0, make test-compat) answer a body with no
        # messages at all with a 500 of their own, after the router routed it; newer ones a 400.
        assert "missing 1 required positional argument: 'messages'" in r.text, r.text
    else:
        assert r.status_code in (200, 400), r.text
    assert gw.metric("stratum_internal_errors_total", where="decide") == 0  # shown, and still zero


def test_a_broken_router_still_serves_every_request(stub_fast: StubBackend, stub_smart: StubBackend) -> None:
    settings = {"python_rules": [{"callable": "rules_for_tests:sabotage"}]}
    with Gateway(stub_fast.api_base, stub_smart.api_base, stratum=settings) as gw:
        assert ask(gw, COMPLEX_PROMPT)[0]["x-stratum-tier"] == "smart"
        # From the sabotaged request on, the router's state is broken: each request still
        # gets an answer, from the tier it would get without the plugin, and the error is
        # counted.
        for content in (f"{COMPLEX_PROMPT} {BREAK_WORD}", COMPLEX_PROMPT, SIMPLE_PROMPT):
            headers, reply = ask(gw, content)
            assert headers["x-litellm-model-group"] == "gemma4-fast"
            assert headers["x-stratum-reason"] == "router_error"
            assert "fast-stub" in reply.choices[0].message.content
        raw = gw.client().chat.completions.with_raw_response.create(
            model="gemma4-auto", messages=[{"role": "user", "content": COMPLEX_PROMPT}], stream=True)
        assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        errors = sum(gw.metric("stratum_internal_errors_total", where=w) or 0 for w in ("pre_call_hook", "decide"))
        assert errors >= 3


def start_refused(settings: Path) -> str:
    """Start a gateway with this settings file, which it must refuse: its log."""
    gw = Gateway("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", stratum_file=settings, wait=False)
    with gw:
        code = gw.wait_exit(timeout_s=120)
        log = gw.log()
    assert code != 0, log[-2000:]
    return log


def test_a_bad_config_refuses_to_start_naming_the_key_and_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "stratum.yaml"
    bad.write_text("stratum:\n  complexity:\n    threshold: high\n  latency:\n    sla_msec: 5\n")
    log = start_refused(bad)
    assert str(bad) in log
    assert "stratum.complexity.threshold" in log and "stratum.latency.sla_msec: unknown key" in log


def test_a_profile_that_cannot_be_read_refuses_to_start_naming_the_key_and_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.json").write_text('{"bias": 1.0, "weights": {}}')
    settings = tmp_path / "stratum.yaml"
    settings.write_text("stratum:\n  complexity:\n    profile: broken.json\n")
    log = start_refused(settings)
    assert str(settings) in log and "complexity.profile" in log and str(tmp_path / "broken.json") in log
    assert "'weights' must name exactly the dimensions" in log


async def test_a_burst_of_concurrent_streams_all_succeed(gateway: Gateway) -> None:
    ask(gateway, SIMPLE_PROMPT)  # the pollers start with the first request
    assert wait_until(lambda: gateway.metric("stratum_backend_slots", tier="smart") == 2, timeout=30, interval=0.2), \
        "the smart backend's slot count was never read at its model_list api_base"
    client = gateway.async_client(timeout=120)
    prompts = [COMPLEX_PROMPT if i % 2 else SIMPLE_PROMPT for i in range(6)]

    async def one(prompt: str) -> tuple[str, str, str | None]:
        raw = await client.chat.completions.with_raw_response.create(
            model="gemma4-auto", messages=[{"role": "user", "content": prompt}], max_tokens=8, stream=True)
        text, finish = "", None
        async for chunk in raw.parse():
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
        return raw.headers["x-litellm-model-group"], text, finish

    results = await asyncio.gather(*(one(p) for p in prompts))
    await client.close()
    # Simple streams went fast. The smart llama-server, read at its model_list api_base,
    # reports 2 slots: two complex streams took them and the third spilled to the fast tier
    # instead of queueing (smart_saturated). Every stream produced text and ended normally.
    groups = [group for group, _, _ in results]
    assert all(g == "gemma4-fast" for g, p in zip(groups, prompts) if p == SIMPLE_PROMPT), groups
    assert sorted(g for g, p in zip(groups, prompts) if p == COMPLEX_PROMPT) == [
        "gemma4-fast", "gemma4-smart", "gemma4-smart"], groups
    assert all(text for _, text, _ in results), results
    assert all(finish in ("stop", "length") for _, _, finish in results), results


def test_the_gateway_reads_the_gpu_through_nvml_and_protects_the_smart_tier(
    tmp_path: Path, stub_fast: StubBackend, stub_smart: StubBackend
) -> None:
    # The gateway process loads the real pynvml, which finds the test NVML library built
    # from tests/support/nvml_fake/fake_nvml.c through LD_LIBRARY_PATH (on any machine).
    import nvml_fake

    gib = nvml_fake.GIB
    half_free = nvml_fake.HALF_FREE  # 16 GB, 8 free, 20 % busy
    fake, env = nvml_fake.for_a_process(tmp_path / "nvml.state", [replace(half_free, free=1 * gib, used=15 * gib)])
    with Gateway(stub_fast.api_base, stub_smart.api_base, env=env) as gw:
        headers, _ = ask(gw, COMPLEX_PROMPT)
        assert (headers["x-litellm-model-group"], headers["x-stratum-reason"]) == ("gemma4-fast", "vram_headroom")
        assert gw.metric("stratum_gpu_known", gpu="0") == 1.0
        assert gw.metric("stratum_gpu_memory_free_bytes", gpu="0") == 1 * gib

        def reason_becomes(expected: str) -> dict:
            deadline = time.monotonic() + 10
            while True:
                headers, _ = ask(gw, COMPLEX_PROMPT)
                if headers["x-stratum-reason"] == expected:
                    return headers
                assert time.monotonic() < deadline, f"still {headers['x-stratum-reason']}"
                time.sleep(0.1)

        fake.set_gpus([half_free])
        assert reason_becomes("complex")["x-litellm-model-group"] == "gemma4-smart"
        fake.set_gpus([replace(half_free, util=97)])
        assert reason_becomes("gpu_busy")["x-litellm-model-group"] == "gemma4-fast"
        # A driver failure turns the signal unknown: the GPU rules abstain, nothing invented.
        fake.fail("nvmlDeviceGetCount_v2", "DRIVER_NOT_LOADED")
        reason_becomes("complex")
        assert gw.metric("stratum_gpu_known", gpu="0") == 0.0


def test_an_edit_to_the_settings_file_applies_without_a_restart(stub_fast: StubBackend, stub_smart: StubBackend) -> None:
    with Gateway(stub_fast.api_base, stub_smart.api_base, stratum={"reload": {"interval_s": 0.5}}) as gw:
        pid = gw.process.pid
        assert ask(gw, SIMPLE_PROMPT)[0]["x-stratum-tier"] == "fast"
        gw.write_stratum({"reload": {"interval_s": 0.5}, "complexity": {"threshold": 0.0}})
        deadline = time.monotonic() + 15
        while ask(gw, SIMPLE_PROMPT)[0]["x-stratum-tier"] != "smart":
            assert time.monotonic() < deadline, "the edit never took effect"
            time.sleep(0.2)
        assert gw.metric("stratum_config_reloads_total", result="ok") == 1
        # An invalid edit is refused: logged, counted, and the last good settings stay.
        gw.write_stratum({"reload": {"interval_s": 0.5}, "complexity": {"threshold": "zero"}})
        deadline = time.monotonic() + 15
        while (gw.metric("stratum_config_reloads_total", result="error") or 0) < 1:
            assert time.monotonic() < deadline, "the invalid edit was never noticed"
            time.sleep(0.2)
        assert "complexity.threshold" in gw.log()
        assert ask(gw, SIMPLE_PROMPT)[0]["x-stratum-tier"] == "smart"
        assert gw.process.pid == pid and gw.process.poll() is None


# -- the smart backend's own load signals (issue: capacity signals) --------------------------


def smart_backend(server_url: str) -> dict:
    return {"tiers": {"smart": {"backend": {"kind": "llamacpp", "url": server_url}}},
            "backend_polling": {"interval_s": 0.2}, **ROUTING_ONLY}


def wait_for_metric(gw: Gateway, name: str, expected: float, **labels: str) -> None:
    deadline = time.monotonic() + 20
    while gw.metric(name, **labels) != expected:
        assert time.monotonic() < deadline, f"{name}{labels} never became {expected}: {gw.metric(name, **labels)}"
        time.sleep(0.2)


async def test_a_burst_spills_over_the_smart_slots_to_the_fast_tier(llama_fast: LlamaServer, llama_smart: LlamaServer) -> None:
    with Gateway(llama_fast.api_base, llama_smart.api_base, stratum=smart_backend(llama_smart.base_url)) as gw:
        ask(gw, SIMPLE_PROMPT)  # the first request starts the router's pollers
        wait_for_metric(gw, "stratum_backend_slots", 2.0, tier="smart")
        client = gw.async_client(timeout=600)

        async def one() -> tuple[str, str]:
            raw = await client.chat.completions.with_raw_response.create(
                model="gemma4-auto", messages=[{"role": "user", "content": COMPLEX_PROMPT}], max_tokens=16, stream=True)
            text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
            return raw.headers["x-litellm-model-group"], text

        results = await asyncio.gather(*(one() for _ in range(20)))
        await client.close()
    groups = [group for group, _ in results]
    # The smart tier got as many as it has slots; the rest went fast instead of queueing.
    assert groups.count("gemma4-smart") == 2, groups
    assert groups.count("gemma4-fast") == 18
    assert all(text for _, text in results)  # nothing failed, every stream produced text


def test_a_smart_backend_that_is_down_gets_no_routed_requests(llama_fast: LlamaServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with Gateway(llama_fast.api_base, f"{dead}/v1", stratum=smart_backend(dead)) as gw:
        ask(gw, SIMPLE_PROMPT)
        wait_for_metric(gw, "stratum_backend_up", 0.0, tier="smart", status="down")
        headers, reply = ask(gw, COMPLEX_PROMPT)
        assert (headers["x-litellm-model-group"], headers["x-stratum-reason"]) == ("gemma4-fast", "smart_down")
        assert reply.choices[0].message.content
        # A request that names the smart tier still goes there, and LiteLLM's fallback
        # serves it from the fast tier.
        headers, reply = ask(gw, COMPLEX_PROMPT, model="gemma4-smart")
        assert headers["x-stratum-reason"] == "forced"
        assert reply.choices[0].message.content
