"""Two router engines (two gateway processes, each with its own client) on one real
redis-server: what `route_shared` decides from the state they share."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stratum_litellm.config import StratumSettings, parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.routing.rules import RequestMeta
from stratum_litellm.signals.shared import SharedState

TIERS = {"fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart", "max_in_flight": 1}}


def settings(**extra: Any) -> StratumSettings:
    raw: dict[str, Any] = {"gpu": {"enabled": False}, "tiers": TIERS, "latency": {"sla_ms": 60_000},
                           "shared_state": {"budget_ms": 500}}
    raw.update(extra)
    return parse_settings(raw)


class Process:
    """One gateway process: an engine sharing its state through a client of its own."""

    def __init__(self, url: str, settings: StratumSettings) -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0))
        self.engine = RouterEngine(settings)
        self.shared = SharedState(settings, lambda: self.client.register_script)
        self.engine.signals.share(self.shared)
        self.calls = 0

    async def route(self, prompt: str, model: str = "gemma4-auto", user: str | None = None,
                    messages: list[dict[str, str]] | None = None) -> tuple[str, str, str]:
        self.calls += 1
        call_id = f"{id(self)}-{self.calls}"
        body = {"model": model, "litellm_call_id": call_id,
                "messages": messages or [{"role": "user", "content": prompt}]}
        decision = await self.engine.route_shared(body, RequestMeta(end_user=user))
        assert decision is not None
        return decision.tier, decision.label, call_id

    def end(self, call_id: str) -> None:
        self.engine.signals.latency.release(call_id)

    async def close(self) -> None:
        self.engine.close()
        await self.client.aclose()


@pytest.fixture
async def processes(redis_url: str, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Process, Process]]:
    config = getattr(request, "param", None) or settings()
    a, b = Process(redis_url, config), Process(redis_url, config)
    assert await a.shared.sync() and await b.shared.sync()
    yield a, b
    await a.close()
    await b.close()


async def test_a_full_tier_through_one_process_sends_the_other_down_the_ladder(
        processes: tuple[Process, Process]) -> None:
    a, b = processes
    tier, _, held = await a.route(COMPLEX_PROMPT)
    assert tier == "smart"
    assert (await b.route(COMPLEX_PROMPT))[:2] == ("fast", "smart_saturated")
    assert (await b.route(SIMPLE_PROMPT))[:2] == ("fast", "simple")  # no claim for the floor
    a.end(held)
    await a.shared.sync()  # the ended lease goes with A's next tick
    assert (await b.route(COMPLEX_PROMPT))[:2] == ("smart", "complex")


async def test_the_other_process_sees_the_share_in_its_view(processes: tuple[Process, Process]) -> None:
    a, b = processes
    await a.route(COMPLEX_PROMPT)
    await a.shared.sync()
    await b.shared.sync()
    # Decided from the view alone (no claim needed to see it): in flight counts A's.
    assert b.engine.signals.snapshot()["smart"].latency.in_flight == 1
    # ...while the gauges show each process's own, so several add up.
    assert b.engine.stats().latency["smart"].in_flight == 0 and a.engine.stats().latency["smart"].in_flight == 1


@pytest.mark.parametrize("processes", [settings(
    tiers={**TIERS, "smart": {"model_group": "gemma4-smart", "max_in_flight_per_user": 1}})], indirect=True)
async def test_one_user_share_holds_across_processes(processes: tuple[Process, Process]) -> None:
    a, b = processes
    assert (await a.route(COMPLEX_PROMPT, user="alice"))[:2] == ("smart", "complex")
    assert (await b.route(COMPLEX_PROMPT, user="alice"))[:2] == ("fast", "smart_user_limit")
    assert (await b.route(COMPLEX_PROMPT, user="bob"))[:2] == ("smart", "complex")


@pytest.mark.parametrize("processes", [settings(latency={"sla_ms": 100, "probe_interval_s": 0.5},
                                                tiers={**TIERS, "smart": {"model_group": "gemma4-smart"}})],
                         indirect=True)
async def test_one_probe_across_processes(processes: tuple[Process, Process]) -> None:
    a, b = processes
    # A slow sample seen by A, published, read by B.
    _, _, call = await a.route(COMPLEX_PROMPT)
    a.engine.signals.latency.observe_success(call, "smart", None, 5000.0)
    await a.shared.sync()
    await b.shared.sync()
    assert (await b.route(COMPLEX_PROMPT))[:2] == ("fast", "latency_sla")
    # Both decide the probe is due once the interval has passed; only one gets it.
    await asyncio.sleep(0.6)
    await a.shared.sync()
    await b.shared.sync()
    first = await a.route(COMPLEX_PROMPT)
    second = await b.route(COMPLEX_PROMPT)
    assert first[:2] == ("smart", "sla_probe") and second[:2] == ("fast", "latency_sla")


async def test_forced_requests_are_counted_not_refused(processes: tuple[Process, Process]) -> None:
    a, b = processes
    await a.route(COMPLEX_PROMPT)
    # A forced request on the full tier still goes there, without waiting on Redis...
    assert (await b.route(COMPLEX_PROMPT, model="gemma4-smart"))[:2] == ("smart", "forced")
    # ...and its lease is published with the next tick.
    await b.shared.sync()
    await a.shared.sync()
    assert a.shared.view().tiers["smart"].others_in_flight == 1  # type: ignore[union-attr]


async def test_redis_gone_routes_from_local_state_and_counts_it(redis_url: str) -> None:
    p = Process(redis_url, settings())
    assert await p.shared.sync()
    before = metrics.SHARED_LOCAL._value.get()  # type: ignore[attr-defined]
    await p.client.aclose()
    p.client = aioredis.Redis.from_url("redis://127.0.0.1:9", socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
    p.shared._register = None  # type: ignore[attr-defined]  # the process lost its Redis
    p.shared._scripts = {}  # type: ignore[attr-defined]
    assert not await p.shared.sync()
    assert not p.shared.up
    assert (await p.route(COMPLEX_PROMPT))[:2] == ("smart", "complex")  # local: nothing in flight here
    assert (await p.route(COMPLEX_PROMPT))[:2] == ("fast", "smart_saturated")  # local count still holds
    assert metrics.SHARED_LOCAL._value.get() == before + 2  # type: ignore[attr-defined]
    assert p.engine.error_count == 0
    await p.close()


async def test_a_broken_shared_state_fails_open(processes: tuple[Process, Process]) -> None:
    a, _ = processes

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug in the shared state")

    a.shared.claim = broken  # type: ignore[method-assign]
    body = {"model": "gemma4-auto", "litellm_call_id": "x", "messages": [{"role": "user", "content": COMPLEX_PROMPT}]}
    decision = await a.engine.route_shared(body, RequestMeta())
    assert decision is not None and decision.label == "router_error" and body["model"] == "gemma4-fast"
    assert a.engine.error_count == 1


async def test_a_finished_request_frees_its_place_for_the_others_at_once(processes: tuple[Process, Process]) -> None:
    a, b = processes
    a.shared.start()
    b.shared.start()
    # One at a time against max_in_flight 1, alternating processes: each finds the tier free.
    for n in range(10):
        p = (a, b)[n % 2]
        tier, label, call = await p.route(COMPLEX_PROMPT)
        assert (tier, label) == ("smart", "complex"), n
        p.end(call)
        await asyncio.sleep(0.05)  # well under one 0.2 s tick: the end woke one early


async def test_a_first_turn_waits_on_nothing(processes: tuple[Process, Process]) -> None:
    a, _ = processes
    calls: list[str] = []
    recall = a.shared.recall

    async def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append("recall")
        return await recall(*args, **kwargs)

    a.shared.recall = counted  # type: ignore[method-assign]
    assert (await a.route(SIMPLE_PROMPT))[:2] == ("fast", "simple")
    assert calls == []
    later = [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"},
             {"role": "user", "content": SIMPLE_PROMPT}]
    await a.route("", messages=later)
    assert calls == ["recall"]


async def test_a_claim_without_an_answer_does_not_take_the_place(processes: tuple[Process, Process]) -> None:
    _, b = processes

    async def late(*args: Any, **kwargs: Any) -> Any:
        raise asyncio.TimeoutError()

    b.shared._run = late  # type: ignore[method-assign]  # Redis answers nothing in time
    tier, label, call = await b.route(COMPLEX_PROMPT)
    assert (tier, label) == ("fast", "smart_saturated")
    # The smart place it could not confirm is given up; it is counted where it runs.
    assert b.shared._leases[call].tier == "fast"  # type: ignore[attr-defined]
