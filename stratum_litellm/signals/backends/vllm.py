"""Reader of a vLLM server: ``/health`` then ``/metrics``.

``/health`` is 200 while the engine is alive and an error once it is dead; before the
model is loaded nothing listens at all (vllm/entrypoints/openai/api_server.py).
``/metrics`` carries ``vllm:num_requests_running`` and ``vllm:num_requests_waiting``
(summed over engines) and the KV cache gauge, ``vllm:kv_cache_usage_perc`` or the older
``vllm:gpu_cache_usage_perc`` (vllm/v1/metrics/loggers.py).
"""

from __future__ import annotations

from ..status import Status
from . import prometheus
from .fetch import Answer, Fetcher, Reply
from .load import BackendTarget
from .reading import Reading, asleep_or_serving, metrics_of

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV = "vllm:kv_cache_usage_perc"
KV_OLD = "vllm:gpu_cache_usage_perc"  # vLLM v0 / early v1 name of the same gauge
SLEEP = "vllm:engine_sleep_state"  # {sleep_state="awake"} 0 = sleeping (--enable-sleep-mode)
NAMES = frozenset({RUNNING, WAITING, KV, KV_OLD, SLEEP})


def poll(fetcher: Fetcher, target: BackendTarget) -> Reading:
    """Fetch what :func:`read` needs (raises ``FetchError`` when ``/health`` cannot be had)."""
    health = fetcher.get(target, "/health")
    metrics = fetcher.attempt(target, "/metrics") if health.status == 200 else None
    return read(health, metrics)


def read(health: Reply, metrics: Answer | None) -> Reading:
    """The reading of a vLLM server from its ``/health`` reply and its ``/metrics`` answer."""
    if health.status != 200:
        return Reading(Status.DOWN, f"GET /health: HTTP {health.status}")
    problems: list[str] = []
    gauges = metrics_of(metrics, NAMES, problems, "vLLM serves /metrics unless disabled")
    running = waiting = None
    kv = None
    if gauges is not None:
        running = prometheus.count(gauges, RUNNING)
        waiting = prometheus.count(gauges, WAITING)
        # Several engines (data parallel) each report one value: take the fullest.
        kv = prometheus.fraction(gauges, KV)
        if kv is None:
            kv = prometheus.fraction(gauges, KV_OLD)
        missing = [name for name, value in ((RUNNING, running), (WAITING, waiting)) if value is None]
        if missing:
            problems.append(f"GET /metrics: no {', '.join(missing)}")
        # Sleep mode (weights offloaded) is vLLM's "not loaded": a completion fails
        # until someone POSTs /wake_up, so routing there would only buy errors.
        if any(labels.get("sleep_state") == "awake" and value == 0 for labels, value in gauges.get(SLEEP, ())):
            return asleep_or_serving(
                "vLLM engine is sleeping (weights offloaded; POST /wake_up wakes it)", problems,
                requests_running=running, requests_waiting=waiting, kv_cache_usage=kv,
            )
    return asleep_or_serving(None, problems, requests_running=running, requests_waiting=waiting, kv_cache_usage=kv)
