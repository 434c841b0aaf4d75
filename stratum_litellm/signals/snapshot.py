"""One consistent view of every signal the policy reads, taken without I/O.

Background workers (the NVML poller) and the callbacks (latency) keep their own state;
:meth:`Signals.snapshot` only copies the latest values, so a routing decision never waits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Mapping

from ..config import TIERS, StratumSettings, Tier
from .backends import BackendLoad, BackendPoller, BackendTarget
from .circuit import UtilisationCircuit
from .gpu import GpuMonitor, GpuReading
from .latency import LatencyTracker, TierLatency
from .status import Status


@dataclass(frozen=True, slots=True)
class TierSignals:
    #: The tier's GPU, or None when unknown (no NVML, error, stale, GPU absent).
    gpu: GpuReading | None
    #: Utilisation circuit of that GPU: True open (too busy), False closed, None unknown.
    gpu_busy: bool | None
    latency: TierLatency
    #: The backend's own load (queue, slots, cache, model loaded), or None when not read.
    backend: BackendLoad | None = None


@dataclass(frozen=True, slots=True)
class SignalSnapshot:
    tiers: Mapping[Tier, TierSignals]
    gpu_status: Status
    gpu_error: str | None
    taken_at: float

    def __getitem__(self, tier: Tier) -> TierSignals:
        return self.tiers[tier]


class Signals:
    """Owns the signal sources of one router and hands out snapshots."""

    def __init__(
        self,
        settings: StratumSettings,
        latency: LatencyTracker | None = None,
        gpu_monitor: GpuMonitor | None = None,
        clock: Callable[[], float] = time.monotonic,
        backend_poller: BackendPoller | None = None,
    ) -> None:
        self._settings = settings
        lat = settings.latency
        self.latency = latency or LatencyTracker(
            alpha=lat.ema_alpha,
            seed_ms=lat.seed_ms,
            failure_threshold=lat.failure_threshold,
            cooldown_s=lat.cooldown_s,
            in_flight_timeout_s=lat.in_flight_timeout_s,
            clock=clock,
        )
        self.gpu_monitor = gpu_monitor
        self.backend_poller = backend_poller
        self._owns_monitor = False
        self._started = False
        self._clock = clock
        self._circuits = _circuits(settings)

    @classmethod
    def polling(cls, settings: StratumSettings) -> "Signals":
        """Signals with the background pollers the settings ask for (NVML, backends'
        HTTP load signals), not yet started."""
        signals = cls(settings, gpu_monitor=_monitor(settings), backend_poller=_backend_poller(settings))
        signals._owns_monitor = True
        return signals

    def start(self) -> None:
        """Start the background pollers (idempotent). The gateway calls this on its first
        request rather than at import: a poller thread that logs while LiteLLM is still
        importing its logging filters can deadlock Python's import locks."""
        if self._started:
            return
        self._started = True
        if self.gpu_monitor is not None and self._owns_monitor:
            self.gpu_monitor.poll_once()  # once, so the first decision has a reading
            self.gpu_monitor.start()
        if self.backend_poller is not None and self._owns_monitor:
            self.backend_poller.start()

    def reconfigure(self, settings: StratumSettings) -> None:
        """Take new settings (a reload): latency state carries over; the NVML poller is
        restarted only when its own settings changed."""
        old, self._settings = self._settings, settings
        lat = settings.latency
        self.latency.configure(lat.ema_alpha, lat.failure_threshold, lat.cooldown_s, lat.in_flight_timeout_s)
        if old.gpu != settings.gpu or old.tiers != settings.tiers:
            self._circuits = _circuits(settings)
        poller_keys = ("enabled", "poll_interval_ms", "stale_after_ms")
        if self._owns_monitor and any(getattr(old.gpu, k) != getattr(settings.gpu, k) for k in poller_keys):
            previous, self.gpu_monitor = self.gpu_monitor, _monitor(settings)
            if previous is not None:
                previous.stop()
            if self._started and self.gpu_monitor is not None:
                self.gpu_monitor.start()
        backend_keys = [(t.backend if t else None) for t in (old.tiers.get("fast"), old.tiers.get("smart"))]
        new_keys = [(t.backend if t else None) for t in (settings.tiers.get("fast"), settings.tiers.get("smart"))]
        if self._owns_monitor and (backend_keys != new_keys or old.backend_polling != settings.backend_polling):
            previous_poller, self.backend_poller = self.backend_poller, _backend_poller(settings)
            if previous_poller is not None:
                previous_poller.stop()
            if self._started and self.backend_poller is not None:
                self.backend_poller.start()

    def close(self) -> None:
        if self.gpu_monitor is not None:
            self.gpu_monitor.stop()
        if self.backend_poller is not None:
            self.backend_poller.stop()

    def snapshot(self) -> SignalSnapshot:
        if self.gpu_monitor is None:
            gpu_status, gpu_error = Status.UNKNOWN, "GPU monitoring is off (gpu.enabled: false)"
            readings: dict[int, GpuReading | None] = {i: None for i in self._circuits}
        else:
            gpu_snapshot = self.gpu_monitor.snapshot()
            gpu_status, gpu_error = gpu_snapshot.status, gpu_snapshot.error
            readings = {i: gpu_snapshot.gpu(i) for i in self._circuits}
            if gpu_status == Status.OK and any(r is None for r in readings.values()):
                missing = sorted(i for i, r in readings.items() if r is None)
                gpu_error = gpu_error or f"no GPU at index {', '.join(map(str, missing))}"
        busy = {
            i: self._circuits[i].update(r.utilization_pct if r is not None else None) for i, r in readings.items()
        }
        loads = self.backend_poller.snapshot() if self.backend_poller is not None else {}
        tiers = {}
        for tier in TIERS:
            index = self._settings.tiers[tier].gpu_index
            tiers[tier] = TierSignals(gpu=readings[index], gpu_busy=busy[index], latency=self.latency.tier(tier),
                                      backend=loads.get(tier))
        return SignalSnapshot(tiers=tiers, gpu_status=gpu_status, gpu_error=gpu_error, taken_at=self._clock())


def _circuits(settings: StratumSettings) -> dict[int, UtilisationCircuit]:
    gpu = settings.gpu
    return {
        index: UtilisationCircuit(gpu.utilisation_trip_pct, gpu.utilisation_reset_pct)
        for index in {settings.tiers[t].gpu_index for t in TIERS}
    }


def _monitor(settings: StratumSettings) -> GpuMonitor | None:
    if not settings.gpu.enabled:
        return None
    return GpuMonitor(
        poll_interval_s=settings.gpu.poll_interval_ms / 1000.0,
        stale_after_s=settings.gpu.stale_after_ms / 1000.0,
    )


def _backend_poller(settings: StratumSettings) -> BackendPoller | None:
    targets = {}
    for tier in TIERS:
        backend = settings.tiers[tier].backend
        if backend is not None:
            targets[tier] = BackendTarget(backend.kind, backend.url, backend.model, backend.api_key,
                                          backend.kv_cache_saturation)
    if not targets:
        return None
    polling = settings.backend_polling
    return BackendPoller(targets, interval_s=polling.interval_s, timeout_s=polling.timeout_s,
                         stale_after_s=polling.stale_after_s, backoff_max_s=polling.backoff_max_s)
