"""The ``stratum-backends`` thread: polls every tier's backend, publishes the loads.

:meth:`BackendPoller.snapshot` is a single attribute read (no lock, no I/O), so a routing
decision never waits on a backend. Failing targets are retried with per-target
exponential back-off and recover by themselves; each distinct problem is logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..status import Status
from ..thread import PollerThread
from . import llama_swap, llamacpp, vllm, warmup
from .detect import detect
from .fetch import Fetcher, FetchError
from .load import BackendLoad, BackendTarget
from .reading import Reading

logger = logging.getLogger("stratum_litellm.backends")

#: How each kind is read: fetch what it needs from the target, make a Reading of it.
_READERS: Mapping[str, Callable[[Fetcher, BackendTarget], Reading]] = {
    "vllm": vllm.poll,
    "llamacpp": llamacpp.poll,
    "llama-swap": llama_swap.poll,
}

# Bound on remembered error texts per target, so a varying error cannot grow memory.
_MAX_REMEMBERED_ERRORS = 64
# Failures counted for back-off: 2.0**n overflows a float after ~1000 (hours of outage).
_MAX_COUNTED_FAILURES = 64


@dataclass(slots=True)
class _TargetState:
    """Mutable per-target bookkeeping; touched only under the poll lock (or as noted)."""

    target: BackendTarget
    kind: str  # resolved kind; "auto" until detection succeeds
    next_due: float = 0.0
    failures: int = 0
    logged_errors: set[str] = field(default_factory=set)
    # Set by warm_up() on any thread (one attribute store), consumed by the poller.
    warm_requested: bool = False
    warm_last: float | None = None
    warm_thread: threading.Thread | None = None


class BackendPoller(PollerThread):
    """Polls each tier's backend in the ``stratum-backends`` daemon thread.

    ``targets`` is keyed by tier name (``"fast"``, ``"smart"``). Healthy and loading
    targets are polled every ``interval_s``; a target that is down (or unrecognised) is
    retried after ``interval_s * 2**n`` for its n-th failure in a row, capped at
    ``backoff_max_s``, and back to ``interval_s`` once it answers. Every request has a
    ``timeout_s`` budget and reads at most ``fetch.MAX_BODY_BYTES``. The values are taken
    as given: the settings validate them.
    """

    _thread_name = "stratum-backends"

    def __init__(
        self,
        targets: Mapping[str, BackendTarget],
        interval_s: float = 1.0,
        timeout_s: float = 0.5,
        stale_after_s: float = 5.0,
        backoff_max_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        warm_up_min_interval_s: float = 30.0,
        warm_up_timeout_s: float = 300.0,
    ) -> None:
        self._interval_s = float(interval_s)
        self._timeout_s = float(timeout_s)
        self._stale_after_s = float(stale_after_s)
        self._backoff_max_s = float(backoff_max_s)
        self._warm_up_min_interval_s = float(warm_up_min_interval_s)
        self._warm_up_timeout_s = float(warm_up_timeout_s)
        self._clock = clock

        self._targets: Mapping[str, BackendTarget] = MappingProxyType(dict(targets))
        self._states = {tier: _TargetState(target, target.kind) for tier, target in targets.items()}
        # Published mapping: replaced wholesale, never mutated, so snapshot() needs no lock.
        self._loads: Mapping[str, BackendLoad] = MappingProxyType(
            {tier: BackendLoad.blank(target, "not polled yet") for tier, target in targets.items()}
        )
        self._global_errors: set[str] = set()

        # Serialises polls (thread, tests, CLI) and guards _states and the fetcher.
        self._poll_lock = threading.Lock()
        self._fetcher = Fetcher(self._timeout_s)

        super().__init__()
        self._wake = threading.Event()  # cuts the thread's sleep short (warm-up, stop)

    def _on_stop_requested(self) -> None:
        self._wake.set()

    # -- public API ----------------------------------------------------------
    @property
    def targets(self) -> Mapping[str, BackendTarget]:
        return self._targets

    def stop(self, timeout: float = 2.0) -> None:
        """Stop and join the ``stratum-backends`` thread, then close its HTTP client.
        Warm-ups in flight are left to finish (daemon threads with their own client)."""
        self._stop_thread(timeout)
        if self._poll_lock.acquire(timeout=max(timeout, 0.0)):
            try:
                self._fetcher.close()
            finally:
                self._poll_lock.release()

    def snapshot(self) -> Mapping[str, BackendLoad]:
        """Latest loads per tier; an ``ok``/``loading`` entry older than ``stale_after_s``
        comes back ``unknown`` with no numbers.

        ``down`` entries do not go stale: under back-off they are legitimately old, and
        their reason says more than "stale" would.
        """
        loads = self._loads  # one reference read: atomic, no lock needed
        now = self._clock()
        stale = [
            tier
            for tier, load in loads.items()
            if load.status in (Status.OK, Status.LOADING) and now - load.taken_at > self._stale_after_s
        ]
        if not stale:
            return loads
        fresh = dict(loads)
        for tier in stale:
            load = loads[tier]
            fresh[tier] = load.unknown(f"no fresh reading for {now - load.taken_at:.1f}s (poller stalled?)")
        return MappingProxyType(fresh)

    def poll_once(self) -> Mapping[str, BackendLoad]:
        """Poll every target now (back-off ignored), publish and return the result.

        Also starts any warm-up asked for since the last poll. Never raises ``Exception``.
        """
        with self._poll_lock:
            for tier in self._states:
                self._poll_tier(tier)
            self._dispatch_warm_ups()
            return self._loads

    def next_poll_in(self, tier: str) -> float:
        """Seconds until the thread polls ``tier`` again (``interval_s`` or its back-off)."""
        return max(0.0, self._states[tier].next_due - self._clock())

    def warm_up(self, tier: str) -> None:
        """Ask for a one-token completion to load a cold model (llama-swap, sleeping llama-server).

        Returns at once on the caller's thread: it only sets a flag. The poller thread (or
        the next :meth:`poll_once`) sends the request from a helper daemon thread, so a
        60 s model load delays neither the caller nor the polling that will see the model
        come up. Rate-limited to one per ``warm_up_min_interval_s`` per tier and never two
        at once; skipped when the latest reading already shows the model loaded, or the
        backend down. An unknown tier is ignored (there is nothing to warm).
        """
        state = self._states.get(tier)
        if state is None:
            return
        state.warm_requested = True
        self._wake.set()

    # -- the thread ----------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            delay = self._interval_s
            try:
                with self._poll_lock:
                    if stop.is_set():
                        return
                    now = self._clock()
                    for tier, state in self._states.items():
                        if state.next_due <= now:
                            self._poll_tier(tier)
                    self._dispatch_warm_ups()
                    if self._states:
                        delay = min(state.next_due for state in self._states.values()) - self._clock()
            except BaseException as exc:  # noqa: BLE001 - the thread must never die
                self._log_once_global(f"backend poller error: {type(exc).__name__}: {exc}")
            self._wake.wait(min(max(delay, 0.0), self._backoff_max_s))
            self._wake.clear()

    # -- polling (with _poll_lock held) ------------------------------------------
    def _poll_tier(self, tier: str) -> None:
        state = self._states[tier]
        target = state.target
        try:
            reading = self._read(state)
        except FetchError as exc:
            reading = Reading(Status.DOWN, str(exc))
        except Exception as exc:  # a bug or a very odd reply: report it, never escape
            reading = Reading(Status.UNKNOWN, f"internal error reading backend: {type(exc).__name__}: {exc}")
        load = BackendLoad(
            kind=state.kind,
            url=target.url,
            status=reading.status,
            error=reading.error,
            requests_running=reading.requests_running,
            requests_waiting=reading.requests_waiting,
            kv_cache_usage=reading.kv_cache_usage,
            slots_total=reading.slots_total,
            slots_idle=reading.slots_idle,
            model_loaded=reading.model_loaded,
            taken_at=self._clock(),
            kv_cache_saturation=target.kv_cache_saturation,
            context_tokens=reading.context_tokens,
            vision=reading.vision,
            audio=reading.audio,
        )
        self._schedule(state, load)
        self._log_transition(tier, state, load)
        loads = dict(self._loads)
        loads[tier] = load
        self._loads = MappingProxyType(loads)  # atomic reference swap

    def _read(self, state: _TargetState) -> Reading:
        if state.kind == "auto":
            detected = detect(self._fetcher, state.target)
            if detected is None:
                return Reading(
                    Status.UNKNOWN,
                    "could not tell what serves here (no llama-swap /running, no vLLM or llama.cpp"
                    " /metrics, no llama.cpp /props); set the backend kind explicitly",
                )
            state.kind = detected
        return _READERS[state.kind](self._fetcher, state.target)

    def _schedule(self, state: _TargetState, load: BackendLoad) -> None:
        if load.status in (Status.DOWN, Status.UNKNOWN):
            state.failures = min(state.failures + 1, _MAX_COUNTED_FAILURES)
            delay = min(self._interval_s * 2.0**state.failures, self._backoff_max_s)
            # After an outage the thing on that port may be another server: detect again.
            state.kind = state.target.kind
        else:
            state.failures = 0
            delay = self._interval_s
        state.next_due = load.taken_at + delay

    # -- warm-up -----------------------------------------------------------------
    def _dispatch_warm_ups(self) -> None:
        # Called with _poll_lock held, on the poller thread or in poll_once().
        for tier, state in self._states.items():
            if not state.warm_requested:
                continue
            state.warm_requested = False
            if state.warm_thread is not None and state.warm_thread.is_alive():
                continue
            now = self._clock()
            if state.warm_last is not None and now - state.warm_last < self._warm_up_min_interval_s:
                continue
            load = self._loads.get(tier)
            if load is not None and load.status == Status.DOWN:
                continue  # nothing listens; a request would only fail
            if load is not None and load.status == Status.OK and load.model_loaded is True:
                continue  # already warm
            if state.kind == "vllm":
                continue  # loaded whenever it listens; a sleeping engine needs /wake_up, not a request
            state.warm_last = now
            state.warm_thread = threading.Thread(
                target=self._warm, args=(tier, state.target), name="stratum-warmup", daemon=True
            )
            state.warm_thread.start()

    def _warm(self, tier: str, target: BackendTarget) -> None:
        try:
            warmup.send(tier, target, self._warm_up_timeout_s, connect_timeout_s=self._timeout_s)
        finally:
            # Poll this tier again soon so the loaded model shows up without waiting a cycle
            # (a lone float store; the poller thread only ever moves it forward).
            self._states[tier].next_due = 0.0
            self._wake.set()

    # -- logging -----------------------------------------------------------------
    def _log_transition(self, tier: str, state: _TargetState, load: BackendLoad) -> None:
        # Once per distinct reason per episode, not once per poll.
        if load.error is None:
            if state.logged_errors:
                state.logged_errors.clear()
                logger.info("backend of tier %s (%s) is %s again", tier, load.url, load.status)
            return
        if load.error in state.logged_errors or len(state.logged_errors) >= _MAX_REMEMBERED_ERRORS:
            return
        state.logged_errors.add(load.error)
        if load.status == Status.LOADING:
            logger.info("backend of tier %s (%s) not ready: %s", tier, load.url, load.error)
        elif load.status == Status.OK:
            logger.warning("backend of tier %s (%s) partly readable: %s", tier, load.url, load.error)
        else:
            logger.warning(
                "backend of tier %s (%s) is %s: %s (retrying with back-off)", tier, load.url, load.status, load.error
            )

    def _log_once_global(self, message: str) -> None:
        if message not in self._global_errors and len(self._global_errors) < _MAX_REMEMBERED_ERRORS:
            self._global_errors.add(message)
            logger.error(message)
