"""Two real gateways (the repository's config as it is, with REDIS_HOST / REDIS_PORT set
for its ``router_settings``) sharing one real redis-server: one router across both.

The fast tier is a real llama-server. The smart tier is the stub backend, the one part
no real backend gives on demand: it stalls for as long as a test asks (so requests stay
in flight and latency crosses the SLA) and counts the requests it answers at once.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from fleet import PATIENT, ask, redis_env, shared_up, warm
from gateway import Gateway
from servers import LlamaServer, StubBackend
from waiting import wait_until

pytestmark = pytest.mark.llama_server

SMART = {"max_in_flight": 2, "backend": "off"}


def gateways(fast: LlamaServer, smart: StubBackend, redis_url: str, settings: dict[str, Any],
             count: int = 2, env: dict[str, str] | None = None) -> list[Gateway]:
    return [Gateway(fast.api_base, smart.api_base, stratum=settings, env={**redis_env(redis_url), **(env or {})})
            for _ in range(count)]


async def test_a_tier_held_through_one_gateway_is_held_for_the_other(
        llama_fast: LlamaServer, redis_url: str) -> None:
    settings = {"latency": {"sla_ms": 120_000}, "tiers": {"smart": SMART}, "shared_state": PATIENT}
    with StubBackend(name="smart-stub") as smart:
        a, b = gateways(llama_fast, smart, redis_url, settings)
        local = Gateway(llama_fast.api_base, smart.api_base, stratum=settings)  # no Redis: its own state
        with a, b, local:
            await warm(a, b)
            await ask(local, SIMPLE_PROMPT)
            assert local.metric("stratum_shared_state_up") is None  # no Redis: not shown

            smart.set_behaviour(ttft_ms=30_000)
            held = [asyncio.create_task(ask(a, COMPLEX_PROMPT, stream=True)) for _ in range(2)]
            await asyncio.to_thread(wait_until, lambda: len(smart.requests()) == 2, 20)

            assert await ask(b, COMPLEX_PROMPT) == ("fast", "smart_saturated")
            # The counterfactual: a gateway that shares nothing sends it to smart.
            smart.set_behaviour(ttft_ms=0)
            assert await ask(local, COMPLEX_PROMPT) == ("smart", "complex")
            smart.set_behaviour(ttft_ms=30_000)

            # Gateway A dies with its two streams in flight: its share goes with its leases.
            a.process.popen.kill()  # type: ignore[union-attr]
            killed = time.monotonic()
            for task in held:
                with pytest.raises(Exception):
                    await task
            smart.set_behaviour(ttft_ms=0)
            while (await ask(b, COMPLEX_PROMPT))[0] != "smart":
                assert time.monotonic() - killed < 10, "A's share never vanished"
                await asyncio.sleep(0.2)
            freed_s = time.monotonic() - killed
            # lease_ttl_s is 2 s; one tick (0.2 s) to see it. A loaded machine adds a little.
            assert freed_s < 4.0, freed_s
            print(f"A's share gone {freed_s:.2f} s after it was killed")


async def test_a_stall_seen_through_one_gateway_holds_the_other_off_with_one_probe_per_interval(
        llama_fast: LlamaServer, redis_url: str) -> None:
    interval_s = 4.0
    settings = {"latency": {"sla_ms": 1000, "probe_interval_s": interval_s}, "tiers": {"smart": {"backend": "off"}},
                "shared_state": PATIENT}
    with StubBackend(name="smart-stub") as smart:
        a, b = gateways(llama_fast, smart, redis_url, settings)
        with a, b:
            await warm(a, b)
            smart.set_behaviour(ttft_ms=2500)
            assert await ask(a, COMPLEX_PROMPT, stream=True) == ("smart", "complex")  # 2.5 s to the first token
            await asyncio.sleep(0.5)  # A's next tick publishes the sample
            assert await ask(b, COMPLEX_PROMPT) == ("fast", "latency_sla")

            # Complex requests through both for a while: the smart backend sees one probe per
            # interval across the two, where each gateway alone would send its own.
            smart.clear_requests()
            window_s = 13.0
            started = time.monotonic()
            replies: list[tuple[str, str]] = []
            while time.monotonic() - started < window_s:
                pair = await asyncio.gather(ask(a, COMPLEX_PROMPT), ask(b, COMPLEX_PROMPT))
                replies += pair
                await asyncio.sleep(0.3)
            probes = len(smart.requests())
            assert ("smart", "sla_probe") in replies
            assert all(r in (("smart", "sla_probe"), ("fast", "latency_sla")) for r in replies), replies
            assert 1 <= probes <= window_s // interval_s + 1, probes
            assert probes == replies.count(("smart", "sla_probe"))


async def test_turn_two_through_the_other_gateway_stays_on_the_tier_turn_one_reached(
        llama_fast: LlamaServer, redis_url: str) -> None:
    # A rule sends the first turn to smart; the follow-up alone scores simple.
    settings = {"latency": {"sla_ms": 120_000}, "tiers": {"smart": {"backend": "off"}}, "shared_state": PATIENT,
                "rules": [{"name": "contracts", "keywords": ["contract"], "route": "smart"}]}
    with StubBackend(name="smart-stub") as smart:
        a, b = gateways(llama_fast, smart, redis_url, settings)
        with a, b:
            await warm(a, b)
            turn_one = [{"role": "user", "content": "Please check this contract."}]
            assert await ask(a, "", messages=turn_one) == ("smart", "rule:contracts")
            await asyncio.sleep(0.5)  # A's tick publishes the conversation's tier
            turn_two = turn_one + [{"role": "assistant", "content": "Done."},
                                   {"role": "user", "content": SIMPLE_PROMPT}]
            assert await ask(b, "", messages=turn_two) == ("smart", "affinity")
            # A conversation neither has seen is judged on its own: the same turn goes fast.
            other = [{"role": "user", "content": "Please look at this."}, {"role": "assistant", "content": "Done."},
                     {"role": "user", "content": SIMPLE_PROMPT}]
            assert await ask(b, "", messages=other) == ("fast", "simple")


async def test_redis_paused_killed_and_restarted_mid_traffic(
        llama_fast: LlamaServer, redis_server: Any, redis_url: str) -> None:
    settings = {"latency": {"sla_ms": 120_000}, "tiers": {"smart": {"max_in_flight": 4, "backend": "off"}}}
    # LiteLLM's own breaker on its Redis client waits this long before trying again (60 s
    # by default); the router comes back on the first tick after it closes.
    env = {"REDIS_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "2"}
    with StubBackend(name="smart-stub") as smart:
        a, b = gateways(llama_fast, smart, redis_url, settings, env=env)
        with a, b:
            await warm(a, b)
            stop = asyncio.Event()
            results: list[tuple[str, str] | BaseException] = []

            async def traffic(gw: Gateway, prompt: str) -> None:
                while not stop.is_set():
                    try:
                        results.append(await ask(gw, prompt, timeout=30))
                    except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                        results.append(exc)

            workers = [asyncio.create_task(traffic(gw, p)) for gw in (a, b) for p in (SIMPLE_PROMPT, COMPLEX_PROMPT)]
            await asyncio.sleep(2)
            redis_server.pause()  # hung: answers nothing
            await asyncio.to_thread(wait_until, lambda: shared_up(a) == 0 and shared_up(b) == 0, 15)
            await asyncio.sleep(2)
            redis_server.resume()
            await asyncio.to_thread(wait_until, lambda: shared_up(a) == 1 and shared_up(b) == 1, 30)
            redis_server.kill()
            await asyncio.to_thread(wait_until, lambda: shared_up(a) == 0 and shared_up(b) == 0, 15)
            await asyncio.sleep(2)
            redis_server.restart()  # empty, on the same port
            back = time.monotonic()
            await asyncio.to_thread(wait_until, lambda: shared_up(a) == 1 and shared_up(b) == 1, 60)
            print(f"shared state up again {time.monotonic() - back:.1f} s after the restart")
            await asyncio.sleep(1)
            stop.set()
            await asyncio.gather(*workers)
            errors = [r for r in results if isinstance(r, BaseException)]
            assert not errors, errors[:3]
            assert len(results) > 20
            assert {tier for tier, _ in results} == {"fast", "smart"}  # type: ignore[misc]
            for gw in (a, b):
                failed = sum(gw.metric("stratum_shared_state_errors_total", op=op) or 0 for op in ("sync", "claim"))
                assert failed > 0
                assert (gw.metric("stratum_shared_state_local_decisions_total") or 0) > 0
                assert gw.metric("stratum_internal_errors_total") == 0


def test_required_shared_state_without_redis_refuses_to_start() -> None:
    gw = Gateway("http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", stratum={"shared_state": {"mode": "required"}},
                 wait=False)
    with gw:
        code = gw.wait_exit(timeout_s=120)
        log = gw.log()
    assert code != 0
    assert str(gw.stratum_path) in log and "stratum.shared_state.mode: 'required' needs a Redis" in log


async def test_two_workers_of_one_gateway_hold_one_limit(llama_fast: LlamaServer, redis_url: str,
                                                         tmp_path: Path) -> None:
    settings = {"latency": {"sla_ms": 120_000}, "tiers": {"smart": SMART}, "shared_state": PATIENT}
    workers = ["--num_workers", "2", "--timeout_worker_healthcheck", "300"]
    # Its own metrics folder: the default is shared by every gateway on the host, and wiped.
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), **redis_env(redis_url)}
    (tmp_path / "metrics").mkdir()
    with StubBackend(name="smart-stub") as smart, \
            Gateway(llama_fast.api_base, smart.api_base, stratum=settings, env=env, args=workers,
                    timeout_s=300) as gw:
        # A connection per request, so both workers take some.
        await asyncio.gather(*(ask(gw, SIMPLE_PROMPT) for _ in range(6)))
        smart.set_behaviour(ttft_ms=6000)
        smart.clear_requests()
        replies = await asyncio.gather(*(ask(gw, COMPLEX_PROMPT, stream=True) for _ in range(6)))
        assert smart.peak() == 2
        assert sorted(replies) == [("fast", "smart_saturated")] * 4 + [("smart", "complex")] * 2
        assert gw.metric("stratum_shared_state_up") == 1  # every live worker's is up (livemin)
