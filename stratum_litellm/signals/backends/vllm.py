"""Reader of a vLLM server: ``/health``, then ``/metrics`` and ``/v1/models``.

``/health`` is 200 while the engine is alive and an error once it is dead; before the
model is loaded nothing listens at all (vllm/entrypoints/openai/api_server.py).
``/metrics`` carries ``vllm:num_requests_running`` and ``vllm:num_requests_waiting``
(summed over engines) and the KV cache gauge, ``vllm:kv_cache_usage_perc`` or the older
``vllm:gpu_cache_usage_perc`` (vllm/v1/metrics/loggers.py). ``/v1/models`` lists the
served models, each base model with the engine's ``max_model_len`` (the tokens one request
may fill, prompt and answer together), LoRA adapters without one
(vllm/entrypoints/openai/models/serving.py). It is a small reply built from the engine's
config, read with the rest on every poll; a failure there (a server started with
``--api-key`` needs the target's ``api_key`` for it) only leaves the context unknown.
"""

from __future__ import annotations

from ..status import Status
from . import prometheus
from .fetch import Answer, Fetcher, Reply
from .load import BackendTarget
from .reading import Reading, asleep_or_serving, json_of, metrics_of

RUNNING = "vllm:num_requests_running"
WAITING = "vllm:num_requests_waiting"
KV = "vllm:kv_cache_usage_perc"
KV_OLD = "vllm:gpu_cache_usage_perc"  # vLLM v0 / early v1 name of the same gauge
SLEEP = "vllm:engine_sleep_state"  # {sleep_state="awake"} 0 = sleeping (--enable-sleep-mode)
NAMES = frozenset({RUNNING, WAITING, KV, KV_OLD, SLEEP})


def poll(fetcher: Fetcher, target: BackendTarget) -> Reading:
    """Fetch what :func:`read` needs (raises ``FetchError`` when ``/health`` cannot be had)."""
    health = fetcher.get(target, "/health")
    if health.status != 200:
        return read(health, None)
    return read(health, fetcher.attempt(target, "/metrics"), fetcher.attempt(target, "/v1/models"))


def read(health: Reply, metrics: Answer | None, models: Answer | None = None) -> Reading:
    """The reading of a vLLM server from its ``/health`` reply and its ``/metrics`` and
    ``/v1/models`` answers (None: not fetched)."""
    if health.status != 200:
        return Reading(Status.DOWN, f"GET /health: HTTP {health.status}")
    problems: list[str] = []
    gauges = metrics_of(metrics, NAMES, problems, "vLLM serves /metrics unless disabled")
    context = _max_model_len(models, problems)
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
                requests_running=running, requests_waiting=waiting, kv_cache_usage=kv, context_tokens=context,
            )
    return asleep_or_serving(None, problems, requests_running=running, requests_waiting=waiting, kv_cache_usage=kv,
                             context_tokens=context)


def _max_model_len(answer: Answer | None, problems: list[str]) -> int | None:
    """The smallest ``max_model_len`` of the models ``/v1/models`` lists (one engine: they
    are all the same); None, noted in ``problems``, when it cannot be had."""
    if answer is None:
        return None
    body = json_of(answer, problems)
    if body is None:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        problems.append("GET /v1/models: reply has no 'data' list")
        return None
    lengths = [m["max_model_len"] for m in data if isinstance(m, dict) and isinstance(m.get("max_model_len"), int)
               and not isinstance(m["max_model_len"], bool) and m["max_model_len"] >= 1]
    if not lengths:
        problems.append("GET /v1/models: no max_model_len (the context window stays unknown)")
        return None
    return min(lengths)
