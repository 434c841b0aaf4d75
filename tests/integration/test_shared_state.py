"""The shared state against a real redis-server: two SharedState objects stand for two
gateway processes (each with its own client, as two processes have)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from stratum_litellm.config import StratumSettings
from stratum_litellm.signals.shared import Claimed, SharedState, merged
from stratum_litellm.signals.latency import LatencyTracker


def settings(**shared: object) -> StratumSettings:
    return StratumSettings.model_validate({
        "shared_state": {"sync_interval_s": 0.05, "lease_ttl_s": 0.5, "budget_ms": 200, **shared},
        "latency": {"failure_threshold": 2, "cooldown_s": 30},
        "tiers": {
            "fast": {"model_group": "gemma4-fast"},
            "smart": {"model_group": "gemma4-smart", "max_in_flight": 2, "max_in_flight_per_user": 1},
            "cloud": {"model_group": "cloud", "overflow": True, "budget": {"requests_per_hour": 5}},
        },
    })


def client(url: str) -> aioredis.Redis:
    # No retries: a paused server must show as a failure, not be retried past the budget.
    return aioredis.Redis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0))


@pytest.fixture
async def pair(redis_url: str) -> AsyncIterator[tuple[SharedState, SharedState]]:
    a_client, b_client = client(redis_url), client(redis_url)
    a = SharedState(settings(), lambda: a_client.register_script)
    b = SharedState(settings(), lambda: b_client.register_script)
    assert await a.sync() and await b.sync()
    yield a, b
    a.close()
    b.close()
    await a_client.aclose()
    await b_client.aclose()


async def test_a_tier_full_through_one_process_is_full_for_the_other(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    for call in ("a1", "a2"):
        assert (await a.claim("smart", call, 2, None, None, None, 0.2)).result is Claimed.GRANTED
    claim = await b.claim("smart", "b1", 2, None, None, None, 0.2)
    assert claim.result is Claimed.TIER_FULL and claim.count == 2
    # B's view, after a tick, counts A's two as others'.
    await a.sync()
    await b.sync()
    view = b.view()
    assert view is not None and view.tiers["smart"].others_in_flight == 2
    # One of A's ends: after A's tick B gets the place.
    a.end("a1")
    await a.sync()
    assert (await b.claim("smart", "b1", 2, None, None, None, 0.2)).result is Claimed.GRANTED


async def test_a_dead_process_share_is_gone_within_the_lease(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    for call in ("a1", "a2"):
        await a.claim("smart", call, 2, None, None, None, 0.2)
    # A stops ticking (it died); B keeps ticking and sees the leases expire.
    started = time.monotonic()
    while (await b.claim("smart", "b1", 2, None, None, None, 0.2)).result is not Claimed.GRANTED:
        assert time.monotonic() - started < 2.0
        await b.sync()
        await asyncio.sleep(0.05)
    assert 0.3 < time.monotonic() - started < 1.5  # lease_ttl_s is 0.5


async def test_renewed_leases_outlive_the_ttl(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    await a.claim("smart", "a1", 2, None, None, None, 0.2)
    await a.claim("smart", "a2", 2, None, None, None, 0.2)
    for _ in range(15):  # 0.75 s: past the 0.5 s lease, renewed each tick
        await a.sync()
        await asyncio.sleep(0.05)
    assert (await b.claim("smart", "b1", 2, None, None, None, 0.2)).result is Claimed.TIER_FULL


async def test_one_owner_share_across_processes(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    assert (await a.claim("smart", "a1", 2, "alice", 1, None, 0.2)).result is Claimed.GRANTED
    claim = await b.claim("smart", "b1", 2, "alice", 1, None, 0.2)
    assert claim.result is Claimed.OWNER_FULL and claim.owned == 1
    assert (await b.claim("smart", "b2", 2, "bob", 1, None, 0.2)).result is Claimed.GRANTED


async def test_one_probe_per_interval_across_processes(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    assert (await a.claim("smart", "a1", None, None, None, 0.3, 0.2)).result is Claimed.GRANTED
    assert (await b.claim("smart", "b1", None, None, None, 0.3, 0.2)).result is Claimed.PROBE_TAKEN
    await b.sync()
    assert b.view().tiers["smart"].probe_claimed  # type: ignore[union-attr]
    await asyncio.sleep(0.35)
    assert (await b.claim("smart", "b2", None, None, None, 0.3, 0.2)).result is Claimed.GRANTED


async def test_every_sample_of_both_processes_is_applied(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    for n in range(50):
        a.sample("smart", 100.0, 1000.0, False)
        b.sample("smart", 300.0, 3000.0, False)
        if n % 10 == 9:
            await asyncio.gather(a.sync(), b.sync())
    await asyncio.gather(a.sync(), b.sync())
    tier = b.view().tiers["smart"]  # type: ignore[union-attr]
    assert tier.samples == 100
    assert 100.0 < tier.ttft_ema_ms < 300.0 and 1000.0 < tier.total_ema_ms < 3000.0  # type: ignore[operator]
    # Failures: two in a row, from two processes, put the tier in cooldown for both.
    a.failure("smart", None)
    await a.sync()
    b.failure("smart", None)
    await b.sync()
    await a.sync()
    for view in (a.view(), b.view()):
        assert view is not None
        assert view.tiers["smart"].consecutive_failures == 2
        assert view.tiers["smart"].unhealthy_until > time.monotonic() + 20
    # The merged latency is what a decision reads.
    local = LatencyTracker(tiers=["fast", "smart", "cloud"]).tier("smart")
    seen = merged(local, a.view().tiers["smart"])  # type: ignore[union-attr]
    assert seen.consecutive_failures == 2 and seen.samples == 100


async def test_a_conversation_is_remembered_and_never_moved_down(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    a.remember("hash:conversation-1", "smart", 1)
    await a.sync()
    assert await b.recall("hash:conversation-1", 0.2) == "smart"
    b.remember("hash:conversation-1", "fast", 0)
    await b.sync()
    assert await a.recall("hash:conversation-1", 0.2) == "smart"
    assert await a.recall("hash:another", 0.2) is None


async def test_the_overflow_budget_adds_up_across_processes(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    a.charge(requests=2, spend_usd=0.25)
    b.charge(requests=1)
    assert b.pending_charges() == (1, 0.0)
    await asyncio.gather(a.sync(), b.sync())
    await a.sync()
    used = a.view().budget_used  # type: ignore[union-attr]
    assert used is not None and used[0] == 3 and used[1] == 3 and abs(used[2] - 0.25) < 1e-9


async def test_no_key_holds_prompt_text(pair: tuple[SharedState, SharedState], redis_url: str) -> None:
    a, _ = pair
    a.remember("hash:a secret prompt", "smart", 1)
    await a.claim("smart", "a1", 2, "alice@example.com", 1, None, 0.2)
    await a.sync()
    raw = client(redis_url)
    keys = [k.decode() for k in await raw.keys("*")]
    values = [await raw.get(k) for k in keys if (await raw.type(k)) == b"string"]
    await raw.aclose()
    assert keys and all(k.startswith("stratum:{gemma4-auto}:") for k in keys)
    text = " ".join(keys) + " ".join(str(v) for v in values)
    assert "secret" not in text and "alice" not in text


async def test_a_hung_redis_holds_a_request_no_longer_than_the_budget(redis_server, redis_url: str) -> None:
    c = client(redis_url)
    state = SharedState(settings(), lambda: c.register_script)
    assert await state.sync() and state.up
    redis_server.pause()
    try:
        for n in range(3):
            started = time.perf_counter()
            claim = await state.claim("smart", f"x{n}", 2, None, None, None, 0.02)
            waited = time.perf_counter() - started
            assert claim.result is Claimed.UNKNOWN and waited < 0.2  # 20 ms asked; a loaded machine adds some
            started = time.perf_counter()
            assert await state.recall("hash:c", 0.02) is None
            assert time.perf_counter() - started < 0.2
        assert not state.up  # late replies in a row: no request waits until a tick succeeds
    finally:
        redis_server.resume()
    # Back by itself: the next tick that succeeds (a fresh connection; the timed-out one
    # was dropped by the client).
    deadline = time.monotonic() + 5
    while not await state.sync():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    assert state.up
    state.close()
    await c.aclose()


async def test_a_stopping_process_gives_its_places_back_at_once(pair: tuple[SharedState, SharedState]) -> None:
    a, b = pair
    for call in ("a1", "a2"):
        assert (await a.claim("smart", call, 2, None, None, None, 0.2)).result is Claimed.GRANTED
    assert await a.release() == 2
    # At once, not after lease_ttl_s: B's very next claim gets a place.
    assert (await b.claim("smart", "b1", 2, None, None, None, 0.2)).result is Claimed.GRANTED
    assert await a.release() == 0  # once only


async def test_a_tick_cancelled_with_its_loop_gives_the_places_back(pair: tuple[SharedState, SharedState]) -> None:
    # What happens when the gateway's event loop ends before the stop had its turn: the
    # tick is cancelled, and gives the leases back before it goes.
    a, b = pair
    a.start()
    for call in ("a1", "a2"):
        assert (await a.claim("smart", call, 2, None, None, None, 0.2)).result is Claimed.GRANTED
    task = a._task
    assert task is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await b.claim("smart", "b1", 2, None, None, None, 0.2)).result is Claimed.GRANTED


async def test_a_new_process_waits_for_its_first_tick_and_no_longer(redis_url: str) -> None:
    found = asyncio.Event()
    c = client(redis_url)
    # Redis "appears" a moment after start-up, as the gateway's router builds its client.
    state = SharedState(settings(start_wait_ms=2000), lambda: c.register_script if found.is_set() else None)
    state.start()
    asyncio.get_running_loop().call_later(0.3, found.set)
    started = time.monotonic()
    await state.settle(2.0)
    waited = time.monotonic() - started
    assert state.up and 0.2 < waited < 1.5
    state.close()
    await c.aclose()


async def test_a_new_process_without_its_redis_waits_once_within_the_bound() -> None:
    state = SharedState(settings(), lambda: None)  # Redis configured but never found
    state.start()
    started = time.monotonic()
    await state.settle(0.3)
    assert 0.25 < time.monotonic() - started < 1.0 and not state.up
    started = time.monotonic()
    await state.settle(0.3)  # the next requests do not wait again
    assert time.monotonic() - started < 0.05
    state.close()


async def test_a_new_process_whose_redis_is_down_does_not_wait(redis_server: object) -> None:
    dead = client("redis://127.0.0.1:9")  # nothing listens there
    state = SharedState(settings(), lambda: dead.register_script)
    state.start()
    started = time.monotonic()
    await state.settle(5.0)
    assert time.monotonic() - started < 3.0 and not state.up  # the failed tick settles it
    state.close()
    await dead.aclose()
