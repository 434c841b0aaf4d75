"""The router's gauges for a gateway with several workers (``litellm --num_workers N``).

There LiteLLM sets ``PROMETHEUS_MULTIPROC_DIR`` and serves ``/metrics`` from
``MultiProcessCollector`` on a registry of its own, which reads only the per-process files
in that directory: a custom collector on the default registry is never asked. So each
worker copies the families of :func:`metrics.gauges` into real ``Gauge`` objects (which
write those files) once when published and then every :data:`REFRESH_S` from a daemon
thread; any family ``gauges`` yields is copied, the table below only says how the workers'
values combine.
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from typing import TYPE_CHECKING, Callable, Iterable, Literal

from prometheus_client import Gauge
from prometheus_client.metrics_core import Metric

from .stats import RouterStats

if TYPE_CHECKING:
    from .engine import RouterEngine

# Only the live modes: their files are deleted when a worker dies (LiteLLM's cleanup at
# worker exit and at a replacement worker's start), so a dead worker's values drop out.
Mode = Literal["livemostrecent", "livesum", "livemin", "livemax"]

#: How the workers' values of a family combine; a family not named here: the most recent.
MODES: dict[str, Mode] = {
    "stratum_tier_in_flight": "livesum",  # each worker counts only the requests it serves
    "stratum_tier_latency_samples": "livesum",  # likewise the answers it measured
    "stratum_shared_state_up": "livemin",  # down as soon as one worker cannot reach it
    "stratum_budget_left": "livemin",  # the worker that has spent most is the one that knows
    "stratum_tier_latency_ema_seconds": "livemax",  # the slowest worker's view, as an SLA check wants
    "stratum_samples_in_progress": "livesum",
    "stratum_labels": "livemax",  # every worker reads the same store; the freshest count is the highest
}
DEFAULT_MODE: Mode = "livemostrecent"
REFRESH_S = 1.0


def multiprocess_dir() -> str | None:
    """The multiprocess directory prometheus-client writes to, when it is set."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


class GaugeMirror:
    """Copies the shown engine's gauge families into multiprocess gauges.

    A per-process file cannot forget a label set, so one that a refresh no longer yields
    (``stratum_backend_up{status="down"}`` once the backend is back, a GPU reading gone
    unknown) is set to NaN once, not left at its last value and not set to 0: NaN compares
    false in PromQL, so ``stratum_backend_up{status="down"} == 0`` (StratumBackendDown)
    stops matching as it does when the series vanishes from a single process's /metrics.
    """

    def __init__(self, read: Callable[[RouterStats], Iterable[Metric]], interval_s: float = REFRESH_S) -> None:
        self._read = read
        self._interval_s = interval_s
        self._engine: weakref.ReferenceType[RouterEngine] | None = None
        self._gauges: dict[str, Gauge] = {}
        self._written: set[tuple[str, tuple[str, ...]]] = set()
        self._lock = threading.Lock()  # one refresh at a time: the thread's, show()'s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def engine(self) -> "RouterEngine | None":
        return self._engine() if self._engine is not None else None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def show(self, engine: "RouterEngine | None") -> None:
        """Mirror ``engine`` from now on (None: stop, and its label sets read NaN)."""
        self._engine = weakref.ref(engine) if engine is not None else None
        if engine is None:
            self._stop.set()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
            self._thread = None
        elif not self.running:
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, args=(self._stop,), name="stratum-metrics",
                                            daemon=True)
            self._thread.start()
        self.refresh()  # the first scrape after publish() already sees the gauges

    def refresh(self) -> None:
        """Write the shown engine's families now. Never raises ``Exception``."""
        engine = self.engine
        try:
            with self._lock:
                self._write(self._read(engine.stats()) if engine is not None else ())
        except Exception as exc:  # the metrics thread must outlive any router bug
            if engine is not None:
                engine.record_error("metrics", exc)

    def _run(self, stop: threading.Event) -> None:
        while not stop.wait(self._interval_s):
            self.refresh()
            if self.engine is None:  # collected without withdraw(): nothing left to mirror
                return

    def _write(self, families: Iterable[Metric]) -> None:
        written: set[tuple[str, tuple[str, ...]]] = set()
        for family in families:
            for sample in family.samples:
                gauge = self._gauges.get(family.name)
                if gauge is None:
                    # registry=None: LiteLLM's /metrics reads the files, not a registry.
                    gauge = self._gauges[family.name] = Gauge(
                        family.name, family.documentation, list(sample.labels), registry=None,
                        multiprocess_mode=MODES.get(family.name, DEFAULT_MODE))
                values = tuple(sample.labels.values())
                (gauge.labels(*values) if values else gauge).set(sample.value)
                written.add((family.name, values))
        for name, values in self._written - written:
            gauge = self._gauges[name]
            (gauge.labels(*values) if values else gauge).set(math.nan)
        self._written = written
