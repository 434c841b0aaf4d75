"""A gateway process told to stop: the router's part waits for the process's own requests
to end (within the server's grace), starts no more judged samples, and is started by the
server's own SIGTERM handler, which still runs."""

from __future__ import annotations

import asyncio
import signal
import time
from types import FrameType
from typing import Any

import pytest

from stratum_litellm.config import StratumSettings
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.gateway.stop import Stop


def engine() -> RouterEngine:
    return RouterEngine(StratumSettings.model_validate({"reload": {"enabled": False}}))


async def test_the_stop_waits_for_the_requests_in_flight_to_end() -> None:
    e = engine()
    e.signals.latency.begin("one", "smart")
    e.signals.latency.begin("two", "fast")
    stop = Stop(e, lambda: 10.0)
    started = time.monotonic()
    asyncio.get_running_loop().call_later(0.2, e.signals.latency.release, "one")
    asyncio.get_running_loop().call_later(0.4, e.signals.latency.release, "two")
    stop.begin()
    await asyncio.wait_for(stop.done.wait(), 5)
    assert 0.35 < time.monotonic() - started < 2.0


async def test_the_stop_waits_no_longer_than_the_servers_grace() -> None:
    e = engine()
    e.signals.latency.begin("lost", "smart")  # its callback never comes
    stop = Stop(e, lambda: 0.3)
    started = time.monotonic()
    stop.begin()
    stop.begin()  # once only
    await asyncio.wait_for(stop.done.wait(), 5)
    assert 0.25 < time.monotonic() - started < 1.5


@pytest.fixture
def handlers() -> Any:
    saved = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    yield
    for number, handler in saved.items():
        signal.signal(number, handler)


async def test_sigterm_starts_the_stop_and_the_servers_own_handler_still_runs(handlers: None) -> None:
    seen: list[int] = []

    def server(number: int, frame: FrameType | None) -> None:  # uvicorn's handle_exit stands here
        seen.append(number)

    signal.signal(signal.SIGTERM, server)
    signal.signal(signal.SIGINT, server)
    stop = Stop(engine(), lambda: 1.0)
    assert stop.install()
    assert not Stop(engine(), lambda: 1.0).install()  # chained once, whoever asks again
    signal.raise_signal(signal.SIGTERM)
    await asyncio.wait_for(stop.done.wait(), 5)
    assert seen == [signal.SIGTERM]


async def test_without_a_server_handling_sigterm_nothing_is_installed(handlers: None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    assert not Stop(engine(), lambda: 1.0).install()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
