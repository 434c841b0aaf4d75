"""One consistent view of every signal the policy reads, taken without I/O.

Background workers (the NVML and backend pollers) and the callbacks (latency) keep their
own state; :meth:`Signals.snapshot` only copies the latest values, so a routing decision
never waits.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Mapping, Union

from ..config import StratumSettings, Tier
from .backends import BackendLoad, BackendPoller, BackendTarget
from .budget import BudgetLeft, BudgetTracker
from .circuit import UtilisationCircuit
from .gpu import GpuMonitor, GpuReading
from .latency import LatencyTracker, TierLatency
from .limits import NONE_KNOWN, TierLimits, merged as merged_limits, reported
from .shared import SharedState, SharedView, merged
from .status import Status

_Poller = Union[GpuMonitor, BackendPoller]
#: The loads of signals without a backend poller (one object, so the limits merged from it keep).
_NO_LOADS: Mapping[Tier, BackendLoad] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class TierSignals:
    #: The tier's GPU, or None when unknown (no NVML, error, stale, GPU absent).
    gpu: GpuReading | None
    #: Utilisation circuit of that GPU: True open (too busy), False closed, None unknown.
    gpu_busy: bool | None
    latency: TierLatency
    #: The backend's own load (queue, slots, cache, model loaded), or None when not read.
    backend: BackendLoad | None = None
    #: What is left of an overflow tier's budget (None for every other tier).
    budget: BudgetLeft | None = None
    #: What the tier's model can take (context window, images, audio, tools), each limit
    #: from the first that knows it: the settings, the group's ``model_info``, what its
    #: backend reports now (:mod:`.limits`); None in a field: unknown.
    limits: TierLimits = NONE_KNOWN


def _nobody(tier: Tier, owner: str) -> int:
    return 0


@dataclass(frozen=True, slots=True)
class SignalSnapshot:
    tiers: Mapping[Tier, TierSignals]
    gpu_status: Status
    gpu_error: str | None
    taken_at: float
    #: Requests one user has in flight on a tier (read live: a user is only known per request).
    held: Callable[[Tier, str], int] = _nobody

    def __getitem__(self, tier: Tier) -> TierSignals:
        return self.tiers[tier]


class Signals:
    """Owns the signal sources of one router and hands out snapshots.

    :meth:`snapshot` may be called from any thread (the request path, the metrics scrape).
    """

    def __init__(
        self,
        settings: StratumSettings,
        latency: LatencyTracker | None = None,
        gpu_monitor: GpuMonitor | None = None,
        clock: Callable[[], float] = time.monotonic,
        backend_poller: BackendPoller | None = None,
        limits: Mapping[Tier, TierLimits] | None = None,
    ) -> None:
        self._settings = settings
        #: Each tier's limits known from the configuration (:func:`.limits.configured`).
        self._limits: Mapping[Tier, TierLimits] = dict(limits or {})
        # tier -> (configured limits, backend load, their merge), see _tier_limits; and the
        # whole mapping with what it was made of (loads, configured, settings), see snapshot.
        self._merged_limits: dict[Tier, tuple[TierLimits | None, BackendLoad | None, TierLimits]] = {}
        self._limits_of: tuple[object, object, object, Mapping[Tier, TierLimits]] = (None, None, None, {})
        lat = settings.latency
        self.latency = latency or LatencyTracker(
            alpha=lat.ema_alpha,
            seed_ms=lat.seed_ms,
            failure_threshold=lat.failure_threshold,
            cooldown_s=lat.cooldown_s,
            in_flight_timeout_s=lat.in_flight_timeout_s,
            clock=clock,
            tiers=settings.tiers,
        )
        self.budget: BudgetTracker | None = _budget(settings, None, clock)
        self.gpu_monitor = gpu_monitor
        self.backend_poller = backend_poller
        #: The state shared with the gateway's other processes (None: this one's only).
        self.shared: SharedState | None = None
        self._owns_monitor = False
        self._started = False
        self._clock = clock
        self._circuits = _circuits(settings)
        # Held while a snapshot reads the GPU and feeds the circuits, so concurrent callers
        # feed readings in the order they were read (an older one after a newer one would
        # flip a circuit back), and while a reload swaps settings, circuits and monitor.
        # Only attribute reads and comparisons happen under it, never I/O.
        self._gpu_lock = threading.Lock()
        # Serialises start() and reconfigure(): a reload racing the first request must not
        # leave a retired poller started and its replacement not.
        self._lifecycle_lock = threading.Lock()

    @classmethod
    def polling(cls, settings: StratumSettings, limits: Mapping[Tier, TierLimits] | None = None) -> "Signals":
        """Signals with the background pollers the settings ask for (NVML, backends'
        HTTP load signals), not yet started; ``limits``: see :meth:`limit`."""
        signals = cls(settings, gpu_monitor=_monitor(settings), backend_poller=_backend_poller(settings),
                      limits=limits)
        signals._owns_monitor = True
        return signals

    def limit(self, configured: Mapping[Tier, TierLimits]) -> None:
        """Put in force each tier's limits as the configuration knows them (the settings'
        ``tiers.<tier>.limits``, then ``model_info``: :func:`.limits.configured`); each
        snapshot adds what the tier's backend reports. A tier left out has only its
        backend's. A reload passes the new ones to :meth:`reconfigure` instead."""
        self._limits = dict(configured)

    def start(self) -> None:
        """Start the background pollers (idempotent). The gateway calls this on its first
        request rather than at import: a poller thread that logs while LiteLLM is still
        importing its logging filters can deadlock Python's import locks."""
        if self._started:  # every request after the first: no lock taken
            return
        with self._lifecycle_lock:
            if self._started:
                return
            self._started = True
            if self.gpu_monitor is not None and self._owns_monitor:
                self.gpu_monitor.poll_once()  # once, so the first decision has a reading
                self.gpu_monitor.start()
            if self.backend_poller is not None and self._owns_monitor:
                self.backend_poller.start()

    def reconfigure(self, settings: StratumSettings, limits: Mapping[Tier, TierLimits] | None = None) -> None:
        """Put new settings in force (a reload), all or nothing: everything that can raise
        (building circuits and pollers, starting the new pollers' threads) happens before
        anything is swapped, so when this raises nothing has changed. ``limits``, when
        given, replaces the configured limits with the settings (:meth:`limit`).

        Latency averages and counts carry over (a new ``latency.seed_ms`` reaches only the
        averages nothing has measured yet); the circuits are rebuilt when the GPU or tier
        settings changed; a poller is replaced only when its own settings changed."""
        with self._lifecycle_lock:
            self._reconfigure(settings, limits)

    def _reconfigure(self, settings: StratumSettings, limits: Mapping[Tier, TierLimits] | None = None) -> None:
        old = self._settings
        circuits = self._circuits
        if old.gpu != settings.gpu or old.tiers != settings.tiers:
            circuits = _circuits(settings)
        monitor, poller = self.gpu_monitor, self.backend_poller
        if self._owns_monitor and _gpu_polling(old) != _gpu_polling(settings):
            monitor = _monitor(settings)
        if self._owns_monitor and _backend_polling(old) != _backend_polling(settings):
            poller = _backend_poller(settings)
        pairs = ((self.gpu_monitor, monitor), (self.backend_poller, poller))
        retired = [current for current, new in pairs if current is not new and current is not None]
        fresh = [new for current, new in pairs if new is not current and new is not None]
        if self._started:
            _start_all(fresh)

        # Swap in: plain stores from here on, nothing raises.
        lat = settings.latency
        self.latency.add_tiers(settings.tiers)
        self.latency.configure(lat.ema_alpha, lat.failure_threshold, lat.cooldown_s, lat.in_flight_timeout_s)
        self.budget = _budget(settings, self.budget, self._clock)
        if lat.seed_ms != old.latency.seed_ms:
            self.latency.seed(lat.seed_ms)
        with self._gpu_lock:
            self._settings, self._circuits, self.gpu_monitor = settings, circuits, monitor
            if limits is not None:
                self._limits = dict(limits)
        self.backend_poller = poller
        for previous in retired:
            previous.stop()

    def share(self, shared: SharedState) -> None:
        """Publish this process's signals to ``shared`` and read the others' from it."""
        self.shared = shared
        self.latency.sink = shared

    def close(self) -> None:
        if self.shared is not None:
            self.shared.close()
        if self.gpu_monitor is not None:
            self.gpu_monitor.stop()
        if self.backend_poller is not None:
            self.backend_poller.stop()

    def snapshot(self) -> SignalSnapshot:
        with self._gpu_lock:
            settings, circuits, monitor = self._settings, self._circuits, self.gpu_monitor
            gpu_error: str | None
            if monitor is None:
                gpu_status, gpu_error = Status.UNKNOWN, "GPU monitoring is off (gpu.enabled: false)"
                readings: dict[int, GpuReading | None] = {i: None for i in circuits}
            else:
                gpu_snapshot = monitor.snapshot()
                gpu_status, gpu_error = gpu_snapshot.status, gpu_snapshot.error
                readings = {i: gpu_snapshot.gpu(i) for i in circuits}
                if gpu_status == Status.OK and any(r is None for r in readings.values()):
                    missing = sorted(i for i, r in readings.items() if r is None)
                    gpu_error = gpu_error or f"no GPU at index {', '.join(map(str, missing))}"
            busy = {i: circuits[i].update(r.utilization_pct if r is not None else None) for i, r in readings.items()}
        backend_poller = self.backend_poller
        loads = backend_poller.snapshot() if backend_poller is not None else _NO_LOADS
        # The poller hands out the same mapping until its next poll: the limits are merged
        # again only then (or after a reload), not per snapshot.
        made_of = self._limits_of
        if made_of[0] is loads and made_of[1] is self._limits and made_of[2] is settings:
            limits = made_of[3]
        else:
            limits = self._all_limits(settings, loads)
        tiers = {}
        budget = self.budget
        view = self.shared.view() if self.shared is not None else None
        for tier, tier_settings in settings.tiers.items():
            latency = self.latency.tier(tier)
            if view is not None:
                latency = merged(latency, view.tiers.get(tier))
            if tier_settings.overflow:  # no GPU of ours
                left = None
                if budget is not None:
                    left = budget.left(_shared_use(view, self.shared))
                tiers[tier] = TierSignals(gpu=None, gpu_busy=None, latency=latency,
                                          backend=loads.get(tier), budget=left, limits=limits[tier])
                continue
            index = tier_settings.gpu_index
            tiers[tier] = TierSignals(gpu=readings[index], gpu_busy=busy[index], latency=latency,
                                      backend=loads.get(tier), limits=limits[tier])
        return SignalSnapshot(tiers=tiers, gpu_status=gpu_status, gpu_error=gpu_error, taken_at=self._clock(),
                              held=self.latency.held)

    def _all_limits(self, settings: StratumSettings, loads: Mapping[Tier, BackendLoad]) -> Mapping[Tier, TierLimits]:
        configured = self._limits
        limits = {tier: self._tier_limits(tier, configured.get(tier), loads.get(tier)) for tier in settings.tiers}
        self._limits_of = (loads, configured, settings, limits)  # one store: racing snapshots build it twice at worst
        return limits

    def _tier_limits(self, tier: Tier, configured: TierLimits | None, load: BackendLoad | None) -> TierLimits:
        """The configured limits, then the backend's, merged only when either changed: the
        poller hands out the same reading until its next poll, and a new reading mostly
        reports the same limits, so a snapshot rarely merges."""
        cached = self._merged_limits.get(tier)
        if cached is not None and cached[0] is configured:
            last = cached[1]
            if last is load:
                return cached[2]
            if last is not None and load is not None and (
                    last.kind, last.context_tokens, last.vision, last.audio) == (
                    load.kind, load.context_tokens, load.vision, load.audio):
                self._merged_limits[tier] = (configured, load, cached[2])
                return cached[2]
        backend = reported(load)
        if backend is None:
            limits = configured if configured is not None else NONE_KNOWN
        else:
            limits = merged_limits(configured, backend)
        self._merged_limits[tier] = (configured, load, limits)  # one store: racing snapshots merge twice at worst
        return limits


def _shared_use(view: "SharedView | None", shared: SharedState | None) -> tuple[int, int, float, float] | None:
    """What every process spent of the budget: the shared totals and this process's
    charges not yet published; None while there is no fresh shared view."""
    if view is None or view.budget_used is None or shared is None:
        return None
    requests, spend = shared.pending_charges()
    hour_r, day_r, hour_s, day_s = view.budget_used
    return hour_r + requests, day_r + requests, hour_s + spend, day_s + spend


def _start_all(pollers: list[_Poller]) -> None:
    """Start every poller, or none: on a failure the ones started are stopped again."""
    started: list[_Poller] = []
    try:
        for poller in pollers:
            poller.start()
            started.append(poller)
    except BaseException:
        for poller in started:
            poller.stop()
        raise


def _gpu_polling(settings: StratumSettings) -> tuple[object, ...]:
    """The settings the NVML poller is built from: a change means a new poller."""
    gpu = settings.gpu
    return gpu.enabled, gpu.poll_interval_ms, gpu.stale_after_ms


def _backend_polling(settings: StratumSettings) -> tuple[object, ...]:
    """The settings the backend poller is built from: a change means a new poller."""
    return tuple((t, s.backend) for t, s in settings.tiers.items()) + (settings.backend_polling,)


def _circuits(settings: StratumSettings) -> dict[int, UtilisationCircuit]:
    gpu = settings.gpu
    return {
        index: UtilisationCircuit(gpu.utilisation_trip_pct, gpu.utilisation_reset_pct)
        for index in {s.gpu_index for s in settings.tiers.values() if not s.overflow}
    }


def _budget(settings: StratumSettings, current: BudgetTracker | None,
            clock: Callable[[], float]) -> BudgetTracker | None:
    """The overflow tier's budget tracker: the current one with new limits, so a reload
    never forgets what was spent."""
    limits = next((s.budget for s in settings.tiers.values() if s.overflow and s.budget is not None), None)
    if limits is None:
        return None
    if current is None:
        return BudgetTracker(limits, clock)
    current.configure(limits)
    return current


def _monitor(settings: StratumSettings) -> GpuMonitor | None:
    if not settings.gpu.enabled:
        return None
    return GpuMonitor(
        poll_interval_s=settings.gpu.poll_interval_ms / 1000.0,
        stale_after_s=settings.gpu.stale_after_ms / 1000.0,
    )


def _backend_poller(settings: StratumSettings) -> BackendPoller | None:
    targets = {}
    for tier, tier_settings in settings.tiers.items():
        backend = tier_settings.polled
        if backend is not None:
            targets[tier] = BackendTarget(backend.kind, backend.url, backend.model, backend.api_key,
                                          backend.kv_cache_saturation)
    if not targets:
        return None
    polling = settings.backend_polling
    return BackendPoller(targets, interval_s=polling.interval_s, timeout_s=polling.timeout_s,
                         stale_after_s=polling.stale_after_s, backoff_max_s=polling.backoff_max_s)
