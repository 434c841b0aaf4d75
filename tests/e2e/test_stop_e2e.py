"""Gateways stopped the way Kubernetes stops a pod (SIGTERM, after the pod has left the
Service), and started again: real LiteLLM gateways with the repository's config and the
plugin, one real Redis, a real load balancer (HAProxy).

The fast tier is a real llama-server. The smart tier is the stub backend, the one part no
real backend gives on demand: streams slow enough to be in flight when a gateway is told
to stop, and an exact count of the requests it serves at once (the tier's limit is
checked on the backend's side, not on the router's word).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from balancer import Balancer
from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from fleet import PATIENT, ask, redis_env, shared_up, warm
from gateway import Gateway
from servers import LlamaServer, StubBackend
from stratum_litellm.signals.shared.keys import Keys
from waiting import wait_until

pytestmark = pytest.mark.llama_server

DEPLOYMENT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes" / "gateway" / "deployment.yaml"
REPLICAS = yaml.safe_load(DEPLOYMENT.read_text())["spec"]["replicas"]  # the rolling restart runs as many
SETTINGS = {"latency": {"sla_ms": 120_000}, "tiers": {"smart": {"max_in_flight": 2, "backend": "off"}},
            "shared_state": PATIENT}


async def chat(base_url: str, key: str, prompt: str, stream: bool, timeout: float = 120.0) -> dict[str, Any]:
    """One request as a client sees it: the status, the tier, and for a stream whether it
    ended normally (a finish reason, then ``data: [DONE]``)."""
    body = {"model": "gemma4-auto", "stream": stream, "max_tokens": 8,
            "messages": [{"role": "user", "content": prompt}]}
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
        async with client.stream("POST", "/v1/chat/completions", json=body) as r:
            text = (await r.aread()).decode(errors="replace")
    result: dict[str, Any] = {"status": r.status_code, "tier": r.headers.get("x-stratum-tier"), "body": text[:600]}
    if r.status_code == 200 and stream:
        events = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
        finished = any(c.get("finish_reason") for e in events[:-1] for c in json.loads(e).get("choices", []))
        result["ended"] = bool(events) and events[-1] == "[DONE]" and finished
    elif r.status_code == 200:
        result["ended"] = bool(json.loads(text)["choices"][0]["message"]["content"])
    return result


def in_flight(gw: Gateway) -> float:
    return sum(gw.metric("stratum_tier_in_flight", tier=t) or 0 for t in ("fast", "smart"))


async def test_sigterm_lets_streams_finish_and_gives_the_places_back_at_once(
        llama_fast: LlamaServer, redis_url: str) -> None:
    # Leases that would outlive the test: a place comes back only because A gave it back.
    settings = {**SETTINGS, "shared_state": {**PATIENT, "lease_ttl_s": 60}}
    leases = Keys("stratum", "gemma4-auto").leases("smart")
    with StubBackend(name="smart-stub") as smart, redis.Redis.from_url(redis_url) as db:
        a, b = (Gateway(llama_fast.api_base, smart.api_base, stratum=settings, env=redis_env(redis_url))
                for _ in range(2))
        with a, b:
            await warm(a, b)
            smart.set_behaviour(token_interval_ms=1000)  # 8 tokens: a 7 s stream, in flight at the signal
            streams = [asyncio.create_task(chat(a.base_url, a.master_key, COMPLEX_PROMPT, stream=True))
                       for _ in range(2)]
            await asyncio.to_thread(wait_until, lambda: in_flight(a) == 2 and db.zcard(leases) == 2, 10)
            assert await ask(b, COMPLEX_PROMPT) == ("fast", "smart_saturated")  # A's two hold the tier
            assert a.process is not None
            a.process.signal_group(signal.SIGTERM)
            code = await asyncio.to_thread(a.wait_exit, 60)
            for result in await asyncio.gather(*streams):
                assert result["status"] == 200 and result["tier"] == "smart" and result["ended"], result
            log = a.log()
            assert db.zcard(leases) == 0, log[-3000:]  # gone with A, not 60 s later
            smart.set_behaviour(token_interval_ms=0)
            assert await ask(b, COMPLEX_PROMPT) == ("smart", "complex"), b.log()[-3000:]  # B's claim finds them
            # uvicorn ends by re-raising the SIGTERM it handled (-15), after a clean shut-down.
            assert code in (0, -signal.SIGTERM) and "Application shutdown complete" in log, log[-2000:]
            # The router's own stop began on SIGTERM, with the streams in flight, before the
            # server's teardown (which waits for the streams to end).
            began = re.search(r"stratum router: stopping; ([0-9]+) request\(s\) in flight", log)
            assert began is not None and int(began.group(1)) >= 1, log[-2000:]
            assert began.start() < log.index("Waiting for application shutdown")


async def test_readiness_does_not_depend_on_redis(llama_fast: LlamaServer, redis_server: Any) -> None:
    redis_server.kill()
    try:
        with StubBackend(name="smart-stub") as smart:
            env = {"REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}
            # Started with its Redis down: it starts, is ready, and routes from its own state.
            with Gateway(llama_fast.api_base, smart.api_base, stratum=SETTINGS, env=env) as gw:
                r = httpx.get(f"{gw.base_url}/health/readiness", timeout=10)
                assert r.status_code == 200, r.text
                started = time.monotonic()
                assert await ask(gw, COMPLEX_PROMPT) == ("smart", "complex")
                assert time.monotonic() - started < 30
                assert shared_up(gw) == 0
                assert (gw.metric("stratum_shared_state_local_decisions_total") or 0) >= 1
    finally:
        redis_server.restart()


async def test_a_rolling_restart_under_load_loses_nothing(llama_fast: LlamaServer, redis_url: str) -> None:
    # As deploy/kubernetes runs it: its replicas of two workers each, one Redis.
    workers = ["--num_workers", "2", "--timeout_worker_healthcheck", "300"]
    with StubBackend(name="smart-stub") as smart:
        smart.set_behaviour(token_interval_ms=120)  # a second per smart answer: they overlap
        gws = [Gateway(llama_fast.api_base, smart.api_base, stratum=SETTINGS, env=redis_env(redis_url),
                       args=workers, timeout_s=300, wait=False) for _ in range(REPLICAS)]
        with contextlib.ExitStack() as started:
            for gw in gws:
                started.enter_context(gw)
            lb = started.enter_context(Balancer([gw.port for gw in gws]))
            began = time.monotonic()
            await asyncio.gather(*(asyncio.to_thread(gw.wait_ready) for gw in gws))  # started side by side
            await asyncio.to_thread(wait_until, lambda: all(lb.up(i) for i in range(REPLICAS)), 30)
            print(f"{REPLICAS} gateways up in {time.monotonic() - began:.0f} s")
            smart.clear_requests()
            stop = asyncio.Event()
            results: list[dict[str, Any]] = []

            async def client(prompt: str, stream: bool) -> None:
                while not stop.is_set():
                    try:
                        results.append(await chat(lb.base_url, gws[0].master_key, prompt, stream))
                    except Exception as exc:  # noqa: BLE001 - every failure is the finding
                        results.append({"status": None, "error": repr(exc)})
                    await asyncio.sleep(0.3)  # steady traffic, with room left on 2 cores for the restarts

            clients = [asyncio.create_task(client(prompt, stream))
                       for prompt, stream in ((COMPLEX_PROMPT, True), (COMPLEX_PROMPT, True), (COMPLEX_PROMPT, False),
                                              (SIMPLE_PROMPT, True), (SIMPLE_PROMPT, False))]
            await asyncio.sleep(3)
            for i, gw in enumerate(gws):
                # Kubernetes: the terminating pod leaves the Service's endpoints while its
                # preStop pause runs, then gets SIGTERM; the Deployment starts a new pod.
                began = time.monotonic()
                lb.remove(i)
                await asyncio.sleep(1)
                assert gw.process is not None
                gw.process.signal_group(signal.SIGTERM)
                code = await asyncio.to_thread(gw.wait_exit, 90)
                assert code in (0, -signal.SIGTERM), gw.log_tail(60)
                stopped = time.monotonic()
                await asyncio.to_thread(gw.restart)
                await asyncio.to_thread(gw.wait_ready)
                lb.add(i)
                await asyncio.to_thread(wait_until, lambda: lb.up(i), 30)
                print(f"gateway {i}: stopped in {stopped - began:.0f} s, back in {time.monotonic() - stopped:.0f} s")
                began = time.monotonic()
                await asyncio.sleep(2)
            stop.set()
            await asyncio.gather(*clients)
            failed = [r for r in results if r["status"] != 200 or not r.get("ended")]
            assert not failed, (failed[:3], [gw.log_tail(40) for gw in gws])
            assert len(results) > 30
            assert {r["tier"] for r in results} == {"fast", "smart"}
            assert smart.peak() <= 2  # never over the smart tier's max_in_flight, across the fleet
            await asyncio.to_thread(wait_until, lambda: all(in_flight(gw) == 0 for gw in gws), 10)
            print(f"rolling restart: {len(results)} requests, "
                  f"{sum(r['tier'] == 'smart' for r in results)} smart, smart peak {smart.peak()}")
