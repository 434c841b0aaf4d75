"""Prometheus metrics of the router, on prometheus-client's default registry.

The gateway serves that registry on its own ``/metrics`` when ``prometheus`` is among its
callbacks. Label values are bounded (tiers, built-in reasons, configured rule names, GPU
indexes); no prompt text ever appears. Counters and histograms are updated on the request
path (a few hundred nanoseconds); gauges are read from the engine's :class:`RouterStats`
only when scraped, and only for the engine that :func:`publish` named. In a gateway with
several workers (``PROMETHEUS_MULTIPROC_DIR`` set) a scrape never reaches this process, so
:mod:`.multiprocess` copies the same gauges into per-process files every second instead.
"""

from __future__ import annotations

import threading
import weakref
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..routing.ladder import Ladder
from ..config import StratumSettings, judged_pair
from ..learning.labels import SOURCES
from ..learning.sampler import OUTCOMES
from ..routing.decision import Reason
from ..signals.status import Status
from .multiprocess import GaugeMirror, multiprocess_dir
from .stats import RouterStats

if TYPE_CHECKING:
    from .engine import RouterEngine

DECISIONS = Counter("stratum_decisions", "Routing decisions, by tier and the rule that decided", ["tier", "reason"])
# Shadow mode: decisions reported but not put in force (the request kept its model).
SHADOW_DECISIONS = Counter("stratum_shadow_decisions",
                           "Shadow-mode decisions (reported, not applied), by tier and the rule that decided",
                           ["tier", "reason"])
SCORES = Histogram(
    "stratum_score", "Complexity score of routed requests", buckets=[i / 20 for i in range(1, 21)]
)
DECISION_SECONDS = Histogram(
    "stratum_decision_seconds",
    "Time to build the request view and decide",
    buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 1e-2),
)
CONFIG_RELOADS = Counter("stratum_config_reloads", "Settings file reloads, by result (ok, error)", ["result"])
ERRORS = Counter("stratum_internal_errors", "Router errors that failed open, by where they happened", ["where"])
SHARED_ERRORS = Counter("stratum_shared_state_errors",
                        "Calls to the shared state in Redis that failed or ran out of time, by operation",
                        ["op"])
SHARED_LOCAL = Counter("stratum_shared_state_local_decisions",
                       "Requests routed from this process's own state while the shared state was down")
SHARED_WAIT_SECONDS = Histogram(
    "stratum_shared_state_wait_seconds",
    "Time a request waited on Redis (claims, conversation look-ups), within shared_state.budget_ms",
    buckets=(1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1),
)
SAMPLES = Counter("stratum_samples", "Judged samples by how they ended: labelled, dropped before any call (why), "
                  "or failed after one (why)", ["outcome"])
JUDGE_VERDICTS = Counter("stratum_judge_verdicts", "Judges' verdicts (needs_strong, first_enough), by the tier that "
                         "served the request", ["tier", "verdict"])
JUDGE_DISAGREEMENTS = Counter("stratum_judge_disagreements", "Verdicts against the router's decision: the first "
                              "tier served and the stronger one was needed, or the stronger served and the first "
                              "was enough", ["tier"])
LEARNING_CALLS = Counter("stratum_learning_calls", "Calls made by judged samples, by kind (answer, judge)", ["kind"])
LEARNING_COST = Counter("stratum_learning_cost_usd", "LiteLLM's cost of the judged samples' calls, by kind", ["kind"])
LABEL_DROPS = Counter("stratum_label_writes_dropped", "Labels and decisions the label store's writer dropped, by "
                      "reason (store_busy: its queue was full; store_error: the write failed)", ["reason"])
FEEDBACK_DECISIONS = Counter("stratum_feedback_decisions", "Decisions recorded for Open WebUI's ratings")
#: The operations of the shared state (the ``op`` label of ``SHARED_ERRORS``).
SHARED_OPS = ("connect", "sync", "claim", "recall", "samples")
#: Where the router records an internal error (the ``where`` label of ``ERRORS``).
ERROR_PLACES = ("pre_call_hook", "response_headers", "decide", "apply", "observe", "warm_up",
                "metrics", "stop")

# Known label values start at zero, so a panel or an alert on them reads 0 from the first
# scrape instead of "No data" until the first event.
for _result in ("ok", "error"):
    CONFIG_RELOADS.labels(_result)
for _where in ERROR_PLACES:
    ERRORS.labels(_where)
for _op in SHARED_OPS:
    SHARED_ERRORS.labels(_op)
for _outcome in OUTCOMES:
    SAMPLES.labels(_outcome)
for _kind in ("answer", "judge"):
    LEARNING_CALLS.labels(_kind)
    LEARNING_COST.labels(_kind)
for _reason in ("store_busy", "store_error"):
    LABEL_DROPS.labels(_reason)


def start_at_zero(settings: StratumSettings) -> None:
    """Create the decision counters of every tier and built-in reason (at zero)."""
    counters = (DECISIONS, SHADOW_DECISIONS) if settings.mode == "shadow" else (DECISIONS,)
    for tier in settings.tiers:
        for reason in Reason:
            for counter in counters:
                counter.labels(tier, str(reason))
    if settings.learning.judged.enabled:
        for tier in judged_pair(settings):
            JUDGE_DISAGREEMENTS.labels(tier)
            for verdict in ("needs_strong", "first_enough"):
                JUDGE_VERDICTS.labels(tier, verdict)


class EngineCollector(Collector):
    """The gauges of one engine, read from its stats at scrape time."""

    def __init__(self) -> None:
        self._engine: weakref.ReferenceType[RouterEngine] | None = None

    @property
    def engine(self) -> "RouterEngine | None":
        return self._engine() if self._engine is not None else None

    def show(self, engine: "RouterEngine | None") -> None:
        self._engine = weakref.ref(engine) if engine is not None else None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        engine = self.engine
        if engine is None:
            return
        try:
            families = list(gauges(engine.stats()))
        except Exception as exc:  # a broken router must not take the gateway's /metrics down
            engine.record_error("metrics", exc)
            return
        yield from families


def gauges(stats: RouterStats) -> Iterator[GaugeMetricFamily]:
    """The router's gauges from one read of its stats."""
    settings = stats.settings
    yield GaugeMetricFamily("stratum_threshold", "Complexity threshold in force", value=settings.complexity.threshold)
    yield GaugeMetricFamily("stratum_sla_seconds", "Latency SLA (latency.sla_ms)", value=settings.latency.sla_ms / 1000)
    tier_sla = GaugeMetricFamily("stratum_tier_sla_seconds", "Latency SLA of each tier above the first",
                                 labels=["tier"])
    entry = GaugeMetricFamily("stratum_tier_entry_score", "Score at or above which a request wants the tier",
                              labels=["tier"])
    ladder = Ladder.of(settings)
    for tier, score in zip(ladder.local, ladder.entry):
        entry.add_metric([tier], score)
    for tier, tier_settings in settings.tiers.items():
        if tier != ladder.floor:
            sla_ms = tier_settings.sla_ms if tier_settings.sla_ms is not None else settings.latency.sla_ms
            tier_sla.add_metric([tier], sla_ms / 1000)
    yield from (tier_sla, entry)
    yield GaugeMetricFamily("stratum_min_free_bytes", "VRAM the smart tier's GPU must keep free",
                            value=settings.gpu.min_free_gib * 1024**3)
    ema = GaugeMetricFamily("stratum_tier_latency_ema_seconds", "Latency EMA per tier", labels=["tier", "measure"])
    in_flight = GaugeMetricFamily("stratum_tier_in_flight", "Requests in flight per tier", labels=["tier"])
    samples = GaugeMetricFamily("stratum_tier_latency_samples", "Latency samples seen per tier", labels=["tier"])
    for tier in settings.tiers:
        lat = stats.latency[tier]
        for measure, value in (("ttft", lat.ttft_ema_ms), ("total", lat.total_ema_ms)):
            if value is not None:
                ema.add_metric([tier, measure], value / 1000.0)
        in_flight.add_metric([tier], lat.in_flight)
        samples.add_metric([tier], lat.samples)
    yield from (ema, in_flight, samples)

    known = GaugeMetricFamily("stratum_gpu_known", "1 when the GPU signal is known", labels=["gpu"])
    free = GaugeMetricFamily("stratum_gpu_memory_free_bytes", "Free GPU memory", labels=["gpu"])
    total = GaugeMetricFamily("stratum_gpu_memory_total_bytes", "Total GPU memory", labels=["gpu"])
    util = GaugeMetricFamily("stratum_gpu_utilisation_ratio", "GPU utilisation (0-1)", labels=["gpu"])
    for index, reading in stats.gpus.items():
        known.add_metric([str(index)], 0 if reading is None else 1)
        if reading is not None:
            free.add_metric([str(index)], reading.memory_free_bytes)
            total.add_metric([str(index)], reading.memory_total_bytes)
            util.add_metric([str(index)], reading.utilization_pct / 100.0)
    yield from (known, free, total, util)

    up = GaugeMetricFamily("stratum_backend_up", "1 when the tier's backend answers and has its model loaded",
                           labels=["tier", "status"])
    running = GaugeMetricFamily("stratum_backend_requests_running", "Requests the backend is serving", labels=["tier"])
    waiting = GaugeMetricFamily("stratum_backend_requests_waiting", "Requests queued in the backend", labels=["tier"])
    slots = GaugeMetricFamily("stratum_backend_slots", "Parallel slots the backend reports", labels=["tier"])
    for tier, load in stats.backends.items():
        up.add_metric([tier, str(load.status)], 1 if load.status == Status.OK else 0)
        for family, value in ((running, load.requests_running), (waiting, load.requests_waiting),
                              (slots, load.slots_total)):
            if value is not None:
                family.add_metric([tier], value)
    yield from (up, running, waiting, slots)

    budget = GaugeMetricFamily("stratum_budget_left", "What is left of the overflow tier's budget, per limit set",
                               labels=["tier", "limit"])
    for tier, left in stats.budgets.items():
        for limit, value in (("requests_per_hour", left.requests_hour), ("requests_per_day", left.requests_day),
                             ("spend_per_hour_usd", left.spend_hour_usd), ("spend_per_day_usd", left.spend_day_usd)):
            if value is not None:
                budget.add_metric([tier, limit], value)
    yield budget
    yield from _learning(stats)
    if stats.shared_up is not None:
        yield GaugeMetricFamily("stratum_shared_state_up",
                                "1 while the state shared with the gateway's other processes (Redis) is fresh",
                                value=1 if stats.shared_up else 0)


def _learning(stats: RouterStats) -> Iterator[GaugeMetricFamily]:
    """The profile in use, how it agrees with the newest labels, and the store's labels."""
    profile = stats.profile
    if profile is not None:
        info = GaugeMetricFamily("stratum_profile_info", "The scoring profile in use (1), named, and when it was "
                                 "fitted", labels=["profile", "fitted"])
        info.add_metric([profile.name, profile.fitted_at or "never"], 1)
        yield info
        yield GaugeMetricFamily("stratum_profile_labels", "Labels the profile in use was fitted on",
                                value=profile.labels)
        fitted = _timestamp(profile.fitted_at)
        if fitted is not None:
            yield GaugeMetricFamily("stratum_profile_fitted_timestamp_seconds", "When the profile in use was fitted",
                                    value=fitted)
    if stats.learning_active:
        yield GaugeMetricFamily("stratum_samples_in_progress", "Judged samples in progress", value=stats.samples_in_progress)
    agreement = stats.agreement
    if agreement is None:
        return
    yield GaugeMetricFamily("stratum_profile_agreement_labels", "The newest labels the profile in use is measured on",
                            value=agreement.labels)
    if agreement.auroc is not None:
        yield GaugeMetricFamily("stratum_profile_agreement_auroc", "AUROC of the profile in use on the newest labels "
                                "(0.5: no better than chance)", value=agreement.auroc)
    counts = GaugeMetricFamily("stratum_labels", "Labels in the store, by source and verdict", labels=["source", "verdict"])
    for source in SOURCES:
        for verdict in ("needs_strong", "first_enough"):
            counts.add_metric([source, verdict], agreement.counts.get((source, verdict), 0))
    yield counts


def _timestamp(at: str | None) -> float | None:
    if at is None:
        return None
    try:
        return datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


_collector: EngineCollector | None = None
_mirror: GaugeMirror | None = None
_lock = threading.Lock()


def publish(engine: "RouterEngine") -> None:
    """Show ``engine``'s gauges on the default registry (the gateway's ``/metrics``).

    Called by whoever starts an engine for a gateway or an SDK router; the collector is
    registered on the first call, so importing this module registers nothing but the
    counters. One engine is shown at a time: the newest one published. With
    ``PROMETHEUS_MULTIPROC_DIR`` set the gauges go to its files instead (see :mod:`.multiprocess`).
    """
    global _collector, _mirror
    with _lock:
        if multiprocess_dir() is not None:
            if _mirror is None:
                _mirror = GaugeMirror(gauges)
            _mirror.show(engine)
        else:
            if _collector is None:
                _collector = EngineCollector()
                REGISTRY.register(_collector)
            _collector.show(engine)
    start_at_zero(engine.settings)


def withdraw(engine: "RouterEngine") -> None:
    """Stop showing ``engine``'s gauges, if it is the one shown (it is closing)."""
    with _lock:
        for shown in (_collector, _mirror):
            if shown is not None and shown.engine is engine:
                shown.show(None)  # the mirror's thread stops here


def published() -> "RouterEngine | None":
    """The engine whose gauges are shown, if any."""
    engines = (shown.engine for shown in (_collector, _mirror) if shown is not None)
    return next((engine for engine in engines if engine is not None), None)
