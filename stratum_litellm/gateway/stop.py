"""What a gateway process does when it is told to stop (SIGTERM: a rolling update, a node
drain, a scale-down).

The server (uvicorn, under LiteLLM) stops accepting connections and lets the requests it
is serving finish, up to LiteLLM's ``GRACEFUL_SHUTDOWN_TIMEOUT``. Meanwhile the router
starts no more judged samples, and once this process's requests have all ended it gives
its leases back to Redis in one last tick, so another replica may use those places at
once rather than when the leases expire, then writes the label store's last batch. Should
the process's loop end first, the shared state's tick gives the leases back as it is
cancelled. A process killed outright (SIGKILL) loses nothing either: its leases expire
within ``shared_state.lease_ttl_s``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from types import FrameType
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from .engine import RouterEngine

logger = logging.getLogger("stratum_litellm")

#: Judged samples in progress at a stop get this long to finish (they hold no client).
SAMPLES_AT_STOP_S = 5.0
_POLL_S = 0.02


class Stop:
    """The stop of one engine: :meth:`install` once on the gateway's event loop, then
    the server's own stop signal starts :meth:`run`, which runs once."""

    def __init__(self, engine: "RouterEngine", timeout_s: Callable[[], float]) -> None:
        self._engine = engine
        self._timeout_s = timeout_s
        self._task: asyncio.Task[None] | None = None
        self.done = asyncio.Event()

    def install(self) -> bool:
        """Chain this stop before the handlers the server has for SIGTERM and SIGINT (only
        where the server handles them, from the main thread: a plain script or a test keeps
        the default). True when installed."""
        if threading.current_thread() is not threading.main_thread():
            return False
        loop = asyncio.get_running_loop()
        installed = False
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(number)
            if not callable(previous) or getattr(previous, "stratum_stop", False):
                continue
            signal.signal(number, self._chained(loop, previous))
            installed = True
        return installed

    def _chained(self, loop: asyncio.AbstractEventLoop, previous: Callable[[int, FrameType | None], Any]
                 ) -> Callable[[int, FrameType | None], Any]:
        def handler(number: int, frame: FrameType | None) -> Any:
            loop.call_soon_threadsafe(self.begin)
            return previous(number, frame)

        handler.stratum_stop = True  # type: ignore[attr-defined]
        return handler

    def begin(self) -> None:
        """Start the stop on the running loop (once)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="stratum-stop")

    async def run(self) -> None:
        engine = self._engine
        try:
            timeout_s = self._timeout_s()
            latency, tiers = engine.signals.latency, list(engine.settings.tiers)

            def in_flight() -> int:
                return sum(latency.in_flight(tier) for tier in tiers)

            logger.warning("stratum router: stopping; %d request(s) in flight", in_flight())
            deadline = time.monotonic() + timeout_s

            async def ended() -> None:
                while in_flight() > 0 and time.monotonic() < deadline:
                    await asyncio.sleep(_POLL_S)

            await asyncio.gather(engine.learning.stop_sampling(min(timeout_s, SAMPLES_AT_STOP_S)), ended())
            if engine.signals.shared is not None:
                await engine.signals.shared.release()
            # The writer's last batch, once every request (and its rating's decision) is in.
            await asyncio.to_thread(engine.learning.close)
        except Exception as exc:  # a stop never fails the server's own
            engine.record_error("stop", exc)
        finally:
            self.done.set()
