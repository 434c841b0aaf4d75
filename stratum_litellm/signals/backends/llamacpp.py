"""Reader of a llama.cpp server (llama-server): ``/health``, ``/props``, ``/metrics``, ``/slots``.

Until its model is loaded llama-server answers 503 ``{"error": {"message": "Loading
model", ...}}`` on every path, ``/health`` too (tools/server/server-http.cpp). ``/props``
gives ``total_slots``, ``is_sleeping``, which endpoints are enabled and what the model can
take: ``default_generation_settings.n_ctx``, the context of ONE slot (``-c`` divided by
``-np``: started with ``-c 1024 -np 2`` it says 512), and ``modalities`` (``{"vision":
false, "audio": false}``; older releases say nothing, which stays unknown); ``/metrics``
(needs ``--metrics``) gives ``llamacpp:requests_processing`` and
``llamacpp:requests_deferred``.

``/slots`` is read only to fill a gap the others left, and never while the server sleeps:
llama-server treats a ``/slots`` read as activity (it wakes a server started with
``--sleep-idle-seconds`` and resets its idle timer), whereas ``/health``, ``/props`` and
``/metrics`` are answered without waking it. Reading ``/metrics`` does reset llama.cpp's
two throughput gauges (``*_tokens_seconds`` are averaged "between two scrapes"); the
counters another Prometheus scrapes are untouched.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..status import Status
from . import prometheus
from .fetch import Answer, Fetcher, Reply
from .load import BackendTarget
from .reading import Reading, asleep_or_serving, json_of, metrics_of

PROCESSING = "llamacpp:requests_processing"
DEFERRED = "llamacpp:requests_deferred"
KV = "llamacpp:kv_cache_usage_ratio"  # only some llama.cpp releases expose it
NAMES = frozenset({PROCESSING, DEFERRED, KV})

_METRICS_HINT = "start llama-server with --metrics"
_SLOTS_HINT = "start llama-server with --slots"


class _Props(NamedTuple):
    total: int | None = None
    sleeping: bool | None = None
    #: Which endpoints /props says are enabled (None: not said), to skip requests bound to fail.
    has_metrics: bool | None = None
    has_slots: bool | None = None
    #: What the model can take: one slot's context, and the modalities.
    context_tokens: int | None = None
    vision: bool | None = None
    audio: bool | None = None


def poll(fetcher: Fetcher, target: BackendTarget) -> Reading:
    """Fetch what :func:`read` needs, in order, skipping what cannot help (raises
    ``FetchError`` when ``/health`` cannot be had)."""
    health = fetcher.get(target, "/health")
    if health.status != 200:
        return read(health)
    props = fetcher.attempt(target, "/props")
    metrics = fetcher.attempt(target, "/metrics") if wants_metrics(props) else None
    slots = fetcher.attempt(target, "/slots") if wants_slots(props, metrics) else None
    return read(health, props, metrics, slots)


def wants_metrics(props: Answer | None) -> bool:
    """Is ``/metrics`` worth reading: ``/props`` did not say it is disabled?"""
    return _props(props, []).has_metrics is not False


def wants_slots(props: Answer | None, metrics: Answer | None) -> bool:
    """Is ``/slots`` worth reading: did ``/props`` or ``/metrics`` leave a gap, and is the
    server awake (a ``/slots`` read would wake it) and serving ``/slots`` at all?"""
    known = _props(props, [])
    running = _gauges(metrics, [])[0]
    return (running is None or known.total is None) and known.sleeping is not True and known.has_slots is not False


def read(health: Reply, props: Answer | None = None, metrics: Answer | None = None,
         slots: Answer | None = None) -> Reading:
    """The reading of a llama-server from its replies (None: not fetched)."""
    if health.status == 503:
        return Reading(Status.LOADING, "llama-server is loading its model (/health 503)", model_loaded=False)
    if health.status != 200:
        return Reading(Status.DOWN, f"GET /health: HTTP {health.status}")

    problems: list[str] = []
    known = _props(props, problems)
    total = known.total
    if known.has_metrics is False:
        problems.append("llama-server runs without --metrics: requests_waiting is unknown")
        running = waiting = None
        kv = None
    else:
        running, waiting, kv = _gauges(metrics, problems)

    idle: int | None = None
    listed = json_of(slots, problems, _SLOTS_HINT)
    counted = _count_slots(listed)
    if counted is not None:
        slot_total, idle = counted
        if total is None:
            total = slot_total
        if running is None:
            running = slot_total - idle
    elif listed is not None:
        problems.append("GET /slots: unexpected shape (want a list of slots with is_processing)")
    if idle is None and total is not None and running is not None:
        idle = max(total - running, 0)

    return asleep_or_serving(
        "llama-server is sleeping (model unloaded after idling; the next request reloads it)" if known.sleeping
        else None,
        problems, requests_running=running, requests_waiting=waiting, kv_cache_usage=kv, slots_total=total,
        slots_idle=idle, context_tokens=known.context_tokens, vision=known.vision, audio=known.audio,
    )


def _props(answer: Answer | None, problems: list[str]) -> _Props:
    body = json_of(answer, problems)
    if not isinstance(body, dict):
        return _Props()
    settings = body.get("default_generation_settings")
    context = _non_negative_int(settings.get("n_ctx")) if isinstance(settings, dict) else None
    modalities = body.get("modalities")
    if not isinstance(modalities, dict):
        modalities = {}
    return _Props(
        total=_non_negative_int(body.get("total_slots")),
        sleeping=_flag(body.get("is_sleeping")),
        has_metrics=_flag(body.get("endpoint_metrics")),
        has_slots=_flag(body.get("endpoint_slots")),
        context_tokens=context or None,  # 0 would be no context at all: not a limit to trust
        vision=_flag(modalities.get("vision")),
        audio=_flag(modalities.get("audio")),
    )


def _gauges(answer: Answer | None, problems: list[str]) -> tuple[int | None, int | None, float | None]:
    """(running, waiting, kv cache use) from ``/metrics``; None where not read."""
    gauges = metrics_of(answer, NAMES, problems, _METRICS_HINT)
    if gauges is None:
        return None, None, None
    return prometheus.count(gauges, PROCESSING), prometheus.count(gauges, DEFERRED), prometheus.fraction(gauges, KV)


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _non_negative_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


def _count_slots(slots: Any) -> tuple[int, int] | None:
    """(total, idle) from llama-server's /slots list; None unless every slot says is_processing."""
    if not isinstance(slots, list) or not slots:
        return None
    idle = 0
    for slot in slots:
        if not isinstance(slot, dict) or not isinstance(slot.get("is_processing"), bool):
            return None
        if not slot["is_processing"]:
            idle += 1
    return len(slots), idle
