"""Per-tier latency and health, fed by the gateway's success and failure callbacks.

Each tier keeps two exponential moving averages: time to first token (from streamed
requests only; a non-streamed reply has no separate first token) and total time. Requests
are counted while in flight, keyed by the gateway's call id, so a burst is visible before
any latency comes back. A request whose callback never arrives is dropped after a timeout
so the count cannot leak upward forever.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Protocol

from ..config import TIERS, Tier


@dataclass(frozen=True, slots=True)
class TierLatency:
    """What the policy may read about one tier, at one moment."""

    ttft_ema_ms: float | None
    total_ema_ms: float | None
    samples: int
    in_flight: int
    #: monotonic time of the newest sample, None before the first.
    last_sample_at: float | None
    consecutive_failures: int
    #: monotonic time until which the tier counts as unhealthy (0.0: healthy).
    unhealthy_until: float
    probe_in_flight: bool
    last_probe_at: float | None

    def measure_ms(self, measure: str) -> float | None:
        """The EMA the SLA is measured on; time to first token falls back to total time
        while no streamed request has been seen."""
        if measure == "ttft" and self.ttft_ema_ms is not None:
            return self.ttft_ema_ms
        return self.total_ema_ms


@dataclass(slots=True)
class _TierState:
    ttft_ema_ms: float | None
    total_ema_ms: float | None
    #: Whether each average holds a measurement, or still only the seed.
    ttft_measured: bool = False
    total_measured: bool = False
    samples: int = 0
    last_sample_at: float | None = None
    consecutive_failures: int = 0
    unhealthy_until: float = 0.0
    probe_call_id: str | None = None
    last_probe_at: float | None = None


@dataclass(slots=True)
class _InFlight:
    tier: Tier
    started_at: float
    probe: bool
    owner: str | None = None


class Sink(Protocol):
    """Told of every sample as it is applied here (the shared state publishes them)."""

    def sample(self, tier: Tier, ttft_ms: float | None, total_ms: float | None, probe: bool) -> None: ...
    def failure(self, tier: Tier, total_ms: float | None) -> None: ...
    def end(self, call_id: str | None) -> None: ...


def _ema(previous: float | None, sample: float, alpha: float) -> float:
    return sample if previous is None else previous + alpha * (sample - previous)


class LatencyTracker:
    """EMAs, in-flight counts and failure streaks per tier. Thread-safe; the lock is only
    held for a few dictionary operations, never across I/O or an await."""

    _SWEEP_EVERY_S = 5.0

    def __init__(
        self,
        alpha: float = 0.2,
        seed_ms: float | None = None,
        failure_threshold: int = 3,
        cooldown_s: float = 30.0,
        in_flight_timeout_s: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
        tiers: Iterable[Tier] = TIERS,
    ) -> None:
        self._alpha = alpha
        self._failure_threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._in_flight_timeout_s = in_flight_timeout_s
        self._clock = clock
        self._lock = threading.Lock()
        self._seed_ms = seed_ms
        self._tiers: dict[Tier, _TierState] = {t: _TierState(seed_ms, seed_ms) for t in tiers}
        self._in_flight: dict[str, _InFlight] = {}
        self._counts: dict[Tier, int] = {t: 0 for t in tiers}
        # In flight per (tier, user), for the per-user limit; only users with one listed.
        self._held: dict[tuple[Tier, str], int] = {}
        self._last_sweep = clock()
        self.sink: Sink | None = None

    def configure(self, alpha: float, failure_threshold: int, cooldown_s: float, in_flight_timeout_s: float) -> None:
        """New parameters (a settings reload); averages and counts carry over."""
        with self._lock:
            self._alpha = alpha
            self._failure_threshold = failure_threshold
            self._cooldown_s = cooldown_s
            self._in_flight_timeout_s = in_flight_timeout_s

    def add_tiers(self, tiers: Iterable[Tier]) -> None:
        """Track these tiers too (a reload that adds a rung); known tiers keep their state,
        and a tier no longer configured keeps its until its requests have ended."""
        with self._lock:
            for tier in tiers:
                if tier not in self._tiers:
                    self._tiers[tier] = _TierState(self._seed_ms, self._seed_ms)
                    self._counts[tier] = 0

    def seed(self, seed_ms: float | None) -> None:
        """A new starting value (a settings reload): every average that no request has
        measured yet (a tier with no sample, or a time to first token before any stream)
        takes ``seed_ms``; measured averages are kept, so a reload never forgets what
        was learnt."""
        with self._lock:
            self._seed_ms = seed_ms
            for state in self._tiers.values():
                if not state.ttft_measured:
                    state.ttft_ema_ms = seed_ms
                if not state.total_measured:
                    state.total_ema_ms = seed_ms

    # -- requests starting and ending -------------------------------------------------

    def begin(self, call_id: str, tier: Tier, probe: bool = False, owner: str | None = None) -> None:
        """Count a request as in flight on ``tier`` (held by ``owner``) until its callback
        arrives."""
        now = self._clock()
        with self._lock:
            if now - self._last_sweep >= self._SWEEP_EVERY_S:
                self._sweep(now)
            previous = self._in_flight.pop(call_id, None)
            if previous is not None:
                self._release(call_id, previous)
            state = self._state(tier)
            self._in_flight[call_id] = _InFlight(tier, now, probe, owner)
            self._counts[tier] += 1
            if owner is not None:
                self._held[(tier, owner)] = self._held.get((tier, owner), 0) + 1
            if probe:
                state.probe_call_id = call_id
                state.last_probe_at = now

    def observe_success(self, call_id: str | None, tier: Tier | None, ttft_ms: float | None,
                        total_ms: float | None) -> None:
        """A request finished on ``tier`` (the tier that really served it). Without a
        usable time it only leaves the in-flight count."""
        with self._lock:
            entry = self._end(call_id)
            served = tier or (entry.tier if entry else None)
            if served is None or (total_ms is None and ttft_ms is None):
                return
            state = self._state(served)
            # A probe measures the tier as it is now: let it replace the stale average so a
            # recovered tier comes back at once instead of after many samples.
            probe = entry is not None and entry.probe and entry.tier == served
            if total_ms is not None:
                state.total_ema_ms = total_ms if probe else _ema(state.total_ema_ms, total_ms, self._alpha)
                state.total_measured = True
            if ttft_ms is not None:
                state.ttft_ema_ms = ttft_ms if probe else _ema(state.ttft_ema_ms, ttft_ms, self._alpha)
                state.ttft_measured = True
            state.samples += 1
            state.last_sample_at = self._clock()
            state.consecutive_failures = 0
            state.unhealthy_until = 0.0
            if self.sink is not None:
                self.sink.sample(served, ttft_ms, total_ms, probe)

    def observe_failure(self, call_id: str | None, tier: Tier | None, total_ms: float | None) -> None:
        """A request failed on ``tier``. A failure never makes a tier look faster: its time
        only counts when it is above the current average (a timeout, not a refused
        connection)."""
        now = self._clock()
        with self._lock:
            entry = self._end(call_id)
            # The tier the call was sent to: LiteLLM may name its fallback's group in the
            # failure of the first attempt (seen for a stream that timed out).
            served = (entry.tier if entry else None) or tier
            if served is None:
                return
            state = self._state(served)
            if total_ms is not None and (state.total_ema_ms is None or total_ms > state.total_ema_ms):
                state.total_ema_ms = _ema(state.total_ema_ms, total_ms, self._alpha)
                state.total_measured = True
            state.last_sample_at = now
            state.consecutive_failures += 1
            if state.consecutive_failures >= self._failure_threshold:
                state.unhealthy_until = now + self._cooldown_s
            if self.sink is not None:
                self.sink.failure(served, total_ms)

    def held(self, tier: Tier, owner: str) -> int:
        """Requests ``owner`` has in flight on ``tier``."""
        return self._held.get((tier, owner), 0)  # one dict read: atomic, no lock needed

    def release(self, call_id: str | None) -> None:
        """A request ended for a reason that says nothing about its tier (the client's
        error, the gateway's own refusal): it only leaves the in-flight count."""
        with self._lock:
            self._end(call_id)

    # -- reading ------------------------------------------------------------------------

    def tier(self, tier: Tier) -> TierLatency:
        with self._lock:
            s = self._state(tier)
            return TierLatency(
                ttft_ema_ms=s.ttft_ema_ms,
                total_ema_ms=s.total_ema_ms,
                samples=s.samples,
                in_flight=self._counts[tier],
                last_sample_at=s.last_sample_at,
                consecutive_failures=s.consecutive_failures,
                unhealthy_until=s.unhealthy_until,
                probe_in_flight=s.probe_call_id is not None,
                last_probe_at=s.last_probe_at,
            )

    def in_flight(self, tier: Tier) -> int:
        return self._counts.get(tier, 0)

    # -- internals (lock held) ------------------------------------------------------------

    def _state(self, tier: Tier) -> _TierState:
        state = self._tiers.get(tier)
        if state is None:  # a tier a reload added, seen before add_tiers ran
            state = self._tiers[tier] = _TierState(self._seed_ms, self._seed_ms)
            self._counts[tier] = 0
        return state

    def _end(self, call_id: str | None) -> _InFlight | None:
        if call_id is None:
            return None
        entry = self._in_flight.pop(call_id, None)
        if entry is not None:
            self._release(call_id, entry)
        if self.sink is not None:
            self.sink.end(call_id)
        return entry

    def _release(self, call_id: str, entry: _InFlight) -> None:
        self._counts[entry.tier] -= 1
        if entry.owner is not None:
            key = (entry.tier, entry.owner)
            left = self._held.get(key, 0) - 1
            if left > 0:
                self._held[key] = left
            else:
                self._held.pop(key, None)  # bounded by the requests in flight, not by users seen
        state = self._tiers[entry.tier]
        if state.probe_call_id == call_id:
            state.probe_call_id = None

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        expired = [cid for cid, e in self._in_flight.items() if now - e.started_at > self._in_flight_timeout_s]
        for call_id in expired:
            self._release(call_id, self._in_flight.pop(call_id))
            if self.sink is not None:
                self.sink.end(call_id)
