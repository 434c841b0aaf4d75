"""GPU signal: a background NVML poller that publishes immutable snapshots.

The router asks "does this tier's GPU have room / is it busy?" on every request, so the
read side (:meth:`GpuMonitor.snapshot`) is a single attribute read: no lock, no I/O.
All NVML work happens in one daemon thread that never dies. When NVML cannot be read
the snapshot says ``unknown`` with the reason and carries no numbers, so callers
abstain instead of trusting a made-up default (such as a fixed "16 GB free" that would
outlive a dead poller).

Mid-poll failures (documented choice):

* A *device-scoped* NVML error (GPU lost, reset required, not supported, ...) on one GPU
  drops only that GPU from the poll: the snapshot stays ``"ok"`` for the others, the
  failing index is absent (``gpu(i)`` returns ``None``) and ``error`` names it, e.g.
  ``"GPU 1 lost"``. Reason: the tiers usually sit on different GPUs; a dead smart-tier
  GPU must not blind the router about the healthy fast-tier GPU.
* Any other failure (driver not loaded, uninitialised, unknown error, a non-NVML
  exception, the device count failing) makes the whole snapshot ``"unknown"``: the
  library itself is suspect, so no value read in that poll is trusted, NVML is shut
  down and re-initialised on the next attempt, and polling backs off.

Either way a snapshot only ever holds values read in one pass; nothing is merged with
an earlier poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from .status import Status
from .thread import PollerThread

__all__ = ["GpuMonitor", "GpuReading", "GpuSnapshot"]

logger = logging.getLogger("stratum_litellm.gpu")

# NVML return codes (stable across driver versions). Looked up on the injected module
# when it has them, so a stand-in module only needs NVMLError-like exceptions.
_LIBRARY_NOT_FOUND = ("NVML_ERROR_LIBRARY_NOT_FOUND", 12)
_GPU_IS_LOST = ("NVML_ERROR_GPU_IS_LOST", 15)
# Errors that describe one device, not the library: the other GPUs are still readable.
_DEVICE_SCOPED = (
    ("NVML_ERROR_INVALID_ARGUMENT", 2),
    ("NVML_ERROR_NOT_SUPPORTED", 3),
    ("NVML_ERROR_NO_PERMISSION", 4),
    ("NVML_ERROR_NOT_FOUND", 6),
    ("NVML_ERROR_INSUFFICIENT_POWER", 8),
    ("NVML_ERROR_TIMEOUT", 10),
    ("NVML_ERROR_IRQ_ISSUE", 11),
    ("NVML_ERROR_CORRUPTED_INFOROM", 14),
    _GPU_IS_LOST,
    ("NVML_ERROR_RESET_REQUIRED", 16),
    ("NVML_ERROR_NO_DATA", 21),
    ("NVML_ERROR_NOT_READY", 27),
    ("NVML_ERROR_GPU_NOT_FOUND", 28),
    ("NVML_ERROR_INVALID_STATE", 29),
)
# Bound on remembered error texts, so an error whose text varies cannot grow memory.
_MAX_REMEMBERED_ERRORS = 64


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One GPU as read in one poll."""

    index: int
    name: str
    memory_total_bytes: int
    memory_free_bytes: int
    memory_used_bytes: int
    utilization_pct: float  # GPU core utilisation 0..100
    memory_utilization_pct: float  # memory controller utilisation 0..100


@dataclass(frozen=True, slots=True)
class GpuSnapshot:
    """Every GPU from one poll, or the reason there are no trustworthy numbers.

    ``status`` is ``ok``, ``unknown`` (never polled, no library, init failed, driver
    error, every GPU failed) or ``stale`` (the poller has not refreshed an ``ok``
    snapshot in time). ``error`` is a short reason when not ok; on an ``ok`` snapshot
    it names GPUs that dropped out of this poll (e.g. ``"GPU 1 lost"``), else ``None``.
    """

    # MappingProxyType is unhashable; keep the dataclass hashable on the other fields.
    readings: Mapping[int, GpuReading] = field(hash=False)
    taken_at: float  # time.monotonic() (or the injected clock) of the poll; 0.0 if never
    status: Status
    error: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # "ok" given as text is Status.OK

    def gpu(self, index: int) -> GpuReading | None:
        """The reading for ``index``; ``None`` means the caller must abstain."""
        if self.status != Status.OK:
            return None
        return self.readings.get(index)

    def is_stale(self, now: float, stale_after_s: float) -> bool:
        """True when already marked stale or older than ``stale_after_s`` at ``now``."""
        return self.status == Status.STALE or now - self.taken_at > stale_after_s


_EMPTY: Mapping[int, GpuReading] = MappingProxyType({})


class _DeviceReadError(Exception):
    """An NVML call for one device failed; carries which GPU and which call."""

    def __init__(self, index: int, call: str, cause: BaseException) -> None:
        super().__init__(f"GPU {index}: {call} failed: {cause}")
        self.index = index
        self.call = call
        self.cause = cause


class GpuMonitor(PollerThread):
    """Polls every GPU through NVML in a daemon thread and publishes snapshots.

    The thread survives every error: failures publish an ``unknown`` snapshot, are
    logged once per distinct reason, and are retried with exponential back-off
    (``backoff_initial_s`` doubling up to ``backoff_max_s``; reset by a good poll).
    The intervals are taken as given: the settings validate them.
    """

    def __init__(
        self,
        poll_interval_s: float = 0.015,
        stale_after_s: float = 1.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        nvml: Any | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._poll_interval_s = float(poll_interval_s)
        self._stale_after_s = float(stale_after_s)
        self._backoff_initial_s = float(backoff_initial_s)
        self._backoff_max_s = float(backoff_max_s)
        self._clock = clock

        self._import_error: str | None = None
        if nvml is None:
            try:
                import pynvml as nvml  # noqa: PLC0415 - optional at import time of this module
            except ImportError:
                # Reported through the snapshot like any other "no NVML" case.
                self._import_error = "pynvml (nvidia-ml-py) is not installed"
        self._nvml: Any | None = nvml

        # Published snapshot: replaced wholesale (one reference store), never mutated,
        # which is what lets snapshot() skip the lock.
        self._snapshot = GpuSnapshot(_EMPTY, 0.0, Status.UNKNOWN, "GPU not polled yet")

        # Serialises pollers (thread, tests, CLI) and guards NVML init state + back-off.
        self._poll_lock = threading.Lock()
        self._initialised = False
        self._backoff_s = self._backoff_initial_s
        self._next_delay_s = self._poll_interval_s
        self._logged_errors: set[str] = set()

        super().__init__()

    _thread_name = "stratum-nvml"

    # -- public API ----------------------------------------------------------
    @property
    def next_delay_s(self) -> float:
        """How long the thread waits before its next poll (poll interval or back-off)."""
        return self._next_delay_s

    def stop(self, timeout: float = 2.0) -> None:
        """Stop and join the ``stratum-nvml`` thread, then shut NVML down if this monitor
        initialised it."""
        if not self._stop_thread(timeout):
            # Stuck inside a driver call: shutting NVML down under it is unsafe.
            logger.warning("NVML poller did not stop within %.1fs; NVML left initialised", timeout)
            return
        if self._poll_lock.acquire(timeout=max(timeout, 0.0)):
            try:
                self._shutdown_nvml()
            finally:
                self._poll_lock.release()

    def snapshot(self) -> GpuSnapshot:
        """Latest snapshot; an ``"ok"`` one older than ``stale_after_s`` comes back ``"stale"``.

        Only ``"ok"`` snapshots go stale: an ``"unknown"`` one already has no numbers,
        and its reason (e.g. driver not loaded, retried under back-off) is more useful
        than "stale".
        """
        snap = self._snapshot  # one reference read: atomic, no lock needed
        if snap.status != Status.OK:
            return snap
        now = self._clock()
        if not snap.is_stale(now, self._stale_after_s):
            return snap
        return GpuSnapshot(
            snap.readings,  # kept for diagnostics only; gpu() returns None when stale
            snap.taken_at,
            Status.STALE,
            f"no fresh GPU reading for {now - snap.taken_at:.2f}s (poller stalled?)",
        )

    def poll_once(self) -> GpuSnapshot:
        """Poll every GPU now, publish the result and return it. Never raises ``Exception``."""
        with self._poll_lock:
            try:
                snap = self._poll_locked()
            except Exception as exc:  # a bug or a stand-in module: report, never escape
                self._shutdown_nvml()
                snap = self._unknown(f"unexpected {type(exc).__name__} from NVML: {exc}")
            self._publish(snap)
            return snap

    # -- polling ---------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.poll_once()
                delay = self._next_delay_s
            except BaseException as exc:  # noqa: BLE001 - the thread must never die
                delay = self._record_crash(exc)
            stop.wait(delay)

    def _record_crash(self, exc: BaseException) -> float:
        # poll_once lets non-Exception errors (SystemExit, custom BaseException) through;
        # in the thread they are one more failure to report and back off from.
        with self._poll_lock:
            try:
                self._shutdown_nvml()
            except BaseException:  # noqa: BLE001
                self._initialised = False
            self._publish(self._unknown(f"unexpected {type(exc).__name__} from NVML: {exc}"))
            return self._next_delay_s

    def _poll_locked(self) -> GpuSnapshot:
        nvml = self._nvml
        if nvml is None:
            return self._unknown(self._import_error or "NVML unavailable")
        taken_at = self._clock()

        if not self._initialised:
            try:
                nvml.nvmlInit()
            except Exception as exc:
                if self._has_code(exc, _LIBRARY_NOT_FOUND):
                    return self._unknown("NVML library not found", taken_at)
                return self._unknown(f"NVML init failed: {exc}", taken_at)
            self._initialised = True

        try:
            count = int(nvml.nvmlDeviceGetCount())
        except Exception as exc:
            self._shutdown_nvml()
            return self._unknown(f"NVML driver error: device count failed: {exc}", taken_at)
        if count <= 0:
            return self._unknown("NVML reports no GPUs", taken_at)

        readings: dict[int, GpuReading] = {}
        dropped: list[str] = []
        for index in range(count):
            try:
                readings[index] = self._read_device(nvml, index)
            except _DeviceReadError as err:
                if self._has_code(err.cause, *_DEVICE_SCOPED):
                    dropped.append(self._describe_device_error(err))
                    continue
                # The library is suspect: discard the whole poll (nothing half-read
                # survives) and re-initialise on the next attempt.
                self._shutdown_nvml()
                return self._unknown(f"NVML driver error: {err}", taken_at)

        reason = "; ".join(dropped) or None
        if not readings:
            return self._unknown(reason or "no GPU could be read", taken_at)
        return GpuSnapshot(MappingProxyType(readings), taken_at, Status.OK, reason)

    @staticmethod
    def _read_device(nvml: Any, index: int) -> GpuReading:
        call = "nvmlDeviceGetHandleByIndex"
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            call = "nvmlDeviceGetName"
            name = nvml.nvmlDeviceGetName(handle)
            call = "nvmlDeviceGetMemoryInfo"
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            call = "nvmlDeviceGetUtilizationRates"
            util = nvml.nvmlDeviceGetUtilizationRates(handle)
        except Exception as exc:
            raise _DeviceReadError(index, call, exc) from exc
        if isinstance(name, bytes):  # older pynvml releases return bytes
            name = name.decode(errors="replace")
        return GpuReading(
            index=index,
            name=str(name),
            memory_total_bytes=int(memory.total),
            memory_free_bytes=int(memory.free),
            memory_used_bytes=int(memory.used),
            utilization_pct=float(util.gpu),
            memory_utilization_pct=float(util.memory),
        )

    def _describe_device_error(self, err: _DeviceReadError) -> str:
        if self._has_code(err.cause, _GPU_IS_LOST):
            return f"GPU {err.index} lost"
        return str(err)

    def _has_code(self, exc: BaseException, *codes: tuple[str, int]) -> bool:
        value = getattr(exc, "value", None)
        if not isinstance(value, int):
            return False
        return any(value == getattr(self._nvml, name, default) for name, default in codes)

    def _shutdown_nvml(self) -> None:
        # nvmlShutdown then a fresh nvmlInit on the next poll is how NVML recovers from
        # driver errors; a failing shutdown (driver gone) must not block that.
        if not self._initialised:
            return
        self._initialised = False
        try:
            self._nvml.nvmlShutdown()  # type: ignore[union-attr]
        except Exception as exc:
            logger.debug("nvmlShutdown failed: %s", exc)

    def _unknown(self, reason: str, taken_at: float | None = None) -> GpuSnapshot:
        return GpuSnapshot(_EMPTY, self._clock() if taken_at is None else taken_at, Status.UNKNOWN, reason)

    def _publish(self, snap: GpuSnapshot) -> None:
        # Called with _poll_lock held.
        if snap.status == Status.OK:
            self._next_delay_s = self._poll_interval_s
            self._backoff_s = self._backoff_initial_s
        else:
            self._next_delay_s = self._backoff_s
            self._backoff_s = min(self._backoff_s * 2.0, self._backoff_max_s)
        self._log_transition(snap)
        self._snapshot = snap  # atomic reference swap; readers see old or new, never mixed

    def _log_transition(self, snap: GpuSnapshot) -> None:
        # Once per distinct reason per episode, not once per 15 ms poll.
        if snap.error is None:
            if self._logged_errors:
                self._logged_errors.clear()
                logger.info("GPU readings recovered")
            return
        if snap.error in self._logged_errors or len(self._logged_errors) >= _MAX_REMEMBERED_ERRORS:
            return
        self._logged_errors.add(snap.error)
        if snap.status == Status.OK:
            logger.warning("GPU partially readable: %s", snap.error)
        else:
            logger.warning("GPU state unknown: %s (retrying with back-off)", snap.error)

