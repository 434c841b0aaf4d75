"""Only a tier's own failures count against it, through a real gateway.

What LiteLLM reports was read from its callbacks (LiteLLM 1.108.7; see
stratum_litellm/gateway/outcome.py): a body it cannot send (a second message with
``"content": 5``) fails as ``APIConnectionError`` over a ``TypeError`` before any backend is
called; a client that closes a stream early is a success whose error information says
``ClientDisconnected``; a backend killed mid-stream is a failure over aiohttp's
``ClientPayloadError``, and the client, already sent a 200, gets an in-stream error event.

Real llama-servers everywhere except where a behaviour must be forced on demand (a slow
stream, for the disconnect after the first chunk: the stub backend).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator

import httpx
import pytest

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from gateway import Gateway
from servers import LlamaServer, StubBackend
from waiting import wait_until

# Three failures in a row would switch the smart tier off for 10 minutes.
HEALTH = {"latency": {"sla_ms": 120_000, "failure_threshold": 3, "cooldown_s": 600}}


def post(gw: Gateway, body: dict, timeout: float = 60) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", json=body, timeout=timeout,
                      headers={"Authorization": f"Bearer {gw.master_key}"})


def complex_reason(gw: Gateway) -> str:
    r = post(gw, {"model": "gemma4-auto", "max_tokens": 4, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]})
    assert r.status_code == 200, r.text
    return r.headers["x-stratum-reason"]


@pytest.fixture(scope="module")
def gateway(llama_fast: LlamaServer, llama_smart: LlamaServer) -> Iterator[Gateway]:
    with Gateway(llama_fast.api_base, llama_smart.api_base, stratum=HEALTH) as gw:
        yield gw


def test_a_client_cannot_switch_the_smart_tier_off_with_bad_requests(gateway: Gateway) -> None:
    bad_bodies = [
        # Scores as complex, then LiteLLM fails it (500) before calling any backend.
        {"model": "gemma4-auto", "messages": [{"role": "user", "content": COMPLEX_PROMPT}, {"role": "user", "content": 5}]},
        {"model": "gemma4-auto", "stream": True,
         "messages": [{"role": "user", "content": COMPLEX_PROMPT}, {"role": "user", "content": 5}]},
        # A model the gateway does not serve (400 from the gateway itself).
        {"model": "no-such-model", "messages": [{"role": "user", "content": COMPLEX_PROMPT}]},
    ]
    for _ in range(3):
        for body in bad_bodies:
            r = post(gateway, body)
            assert r.status_code in (400, 500), r.text
    # A client that gives up before the answer (its own timeout).
    for _ in range(3):
        with pytest.raises(httpx.TimeoutException):
            post(gateway, {"model": "gemma4-auto", "max_tokens": 64,
                           "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}, timeout=0.05)
    # The abandoned requests leave the in-flight count when the backend finishes them.
    assert wait_until(lambda: gateway.metric("stratum_tier_in_flight", tier="smart") == 0, timeout=90, interval=0.2)
    assert wait_until(lambda: gateway.metric("stratum_backend_requests_running", tier="smart") == 0
                      and gateway.metric("stratum_backend_requests_waiting", tier="smart") == 0, timeout=90, interval=0.2)
    assert complex_reason(gateway) == "complex", "bad requests counted as failures of the smart tier"


def test_a_backend_killed_mid_stream_counts_as_a_failure_of_its_tier(llama_fast: LlamaServer) -> None:
    # Its own llama-server, killed on purpose; its load signals are not read (backend: off),
    # so only the failure callback can tell the router.
    settings = {"latency": {"sla_ms": 120_000, "failure_threshold": 1, "cooldown_s": 600},
                "tiers": {"smart": {"backend": "off"}}}
    with LlamaServer(alias="gemma4-smart", slots=2) as smart, \
            Gateway(llama_fast.api_base, smart.api_base, stratum=settings) as gw:
        body = {"model": "gemma4-auto", "stream": True, "max_tokens": 400,
                "messages": [{"role": "user", "content": f"{COMPLEX_PROMPT} Answer at length."}]}
        events: list[str] = []
        with httpx.stream("POST", f"{gw.base_url}/v1/chat/completions", json=body, timeout=60,
                          headers={"Authorization": f"Bearer {gw.master_key}"}) as r:
            assert r.status_code == 200 and r.headers["x-stratum-tier"] == "smart"
            for line in r.iter_lines():
                if line.startswith("data:"):
                    events.append(line.removeprefix("data:").strip())
                    if len(events) == 3:
                        assert smart.process is not None and smart.process.popen is not None
                        os.kill(smart.process.popen.pid, signal.SIGKILL)
        # What the client sees after the chunks so far depends on LiteLLM: 1.108.7 sends an
        # error event and ends the stream (no [DONE]); 1.94.0 goes on with chunks from the
        # fallback group (gemma4-fast) and ends normally.
        payloads = [json.loads(e) for e in events[3:] if e != "[DONE]"]
        errored = any("error" in p for p in payloads) and events[-1] != "[DONE]"
        continued = any(p.get("model") == "gemma4-fast" for p in payloads) and events[-1] == "[DONE]"
        assert errored or continued, events[-3:]
        assert wait_until(lambda: gw.metric("stratum_tier_in_flight", tier="smart") == 0, timeout=30, interval=0.2)
        headers = post(gw, {"model": "gemma4-auto", "max_tokens": 4,
                            "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}).headers
        assert (headers["x-stratum-tier"], headers["x-stratum-reason"]) == ("fast", "smart_unhealthy")


def test_a_stream_closed_after_the_first_chunk_counts_its_first_token_not_its_total() -> None:
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
            Gateway(fast.api_base, smart.api_base, stratum=HEALTH) as gw:
        smart.set_behaviour(ttft_ms=300, token_interval_ms=500, tokens=40)  # a 20 s answer
        body = {"model": "gemma4-auto", "stream": True, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}
        with httpx.stream("POST", f"{gw.base_url}/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {gw.master_key}"}) as r:
            assert r.headers["x-stratum-tier"] == "smart"
            next(line for line in r.iter_lines() if line.startswith("data:"))
        assert wait_until(lambda: gw.metric("stratum_tier_latency_samples", tier="smart") == 1, timeout=30,
                          interval=0.2), "the cut-short stream never reached the callbacks"
        ttft = gw.metric("stratum_tier_latency_ema_seconds", tier="smart", measure="ttft")
        assert ttft is not None and 0.25 <= ttft < 5
        assert gw.metric("stratum_tier_latency_ema_seconds", tier="smart", measure="total") is None
        assert gw.metric("stratum_tier_in_flight", tier="smart") == 0
        assert complex_reason(gw) == "complex"
        # A simple request on the same gateway is untouched by it.
        r = post(gw, {"model": "gemma4-auto", "messages": [{"role": "user", "content": SIMPLE_PROMPT}]})
        assert r.headers["x-stratum-tier"] == "fast"
