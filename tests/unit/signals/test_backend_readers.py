"""The per-kind readers as pure functions of replies: no server, no poller.

The poller's integration tests serve the same shapes over HTTP to the whole poller; here
each rule of a reader is pinned alone.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratum_litellm.signals.backends import detect, llama_swap, llamacpp, vllm
from stratum_litellm.signals.backends.fetch import FetchError, Reply
from stratum_litellm.signals.status import Status


def reply(path: str, body: Any = b"", status: int = 200) -> Reply:
    data = body if isinstance(body, bytes) else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
    return Reply(path, status, data)


HEALTHY = reply("/health", {"status": "ok"})
PROPS = reply("/props", {"total_slots": 2, "is_sleeping": False, "endpoint_metrics": True, "endpoint_slots": True})
LLAMA_METRICS = reply("/metrics", "llamacpp:requests_processing 1\nllamacpp:requests_deferred 3\n")


# -- llama.cpp --------------------------------------------------------------------


def test_llamacpp_counts_from_props_and_metrics() -> None:
    r = llamacpp.read(HEALTHY, PROPS, LLAMA_METRICS)
    assert r.status is Status.OK and r.error is None and r.model_loaded is True
    assert (r.slots_total, r.requests_running, r.requests_waiting, r.slots_idle) == (2, 1, 3, 1)


def test_llamacpp_never_reads_slots_of_a_sleeping_server_or_when_nothing_is_missing() -> None:
    asleep = reply("/props", {"total_slots": 2, "is_sleeping": True})
    assert not llamacpp.wants_slots(asleep, None)  # a /slots read would wake it
    assert not llamacpp.wants_slots(PROPS, LLAMA_METRICS)  # /props and /metrics said it all
    assert not llamacpp.wants_slots(reply("/props", {"endpoint_slots": False}), None)
    assert llamacpp.wants_slots(PROPS, reply("/metrics", "", status=501))  # the gap /slots fills

    r = llamacpp.read(HEALTHY, asleep)
    assert r.status is Status.LOADING and r.model_loaded is False and "sleeping" in (r.error or "")


def test_llamacpp_without_metrics_counts_slots_and_says_what_is_unknown() -> None:
    props = reply("/props", {"total_slots": 2, "is_sleeping": False, "endpoint_metrics": False})
    slots = reply("/slots", [{"id": 0, "is_processing": True}, {"id": 1, "is_processing": False}])
    assert not llamacpp.wants_metrics(props)  # a request bound to fail is not sent
    r = llamacpp.read(HEALTHY, props, None, slots)
    assert r.status is Status.OK
    assert (r.slots_total, r.slots_idle, r.requests_running, r.requests_waiting) == (2, 1, 1, None)
    assert r.error == "llama-server runs without --metrics: requests_waiting is unknown"


def test_llamacpp_loading_and_failing_health() -> None:
    assert llamacpp.read(reply("/health", status=503)).status is Status.LOADING
    r = llamacpp.read(reply("/health", status=500))
    assert r.status is Status.DOWN and r.error == "GET /health: HTTP 500"


def test_llamacpp_secondary_failures_are_noted_not_fatal() -> None:
    r = llamacpp.read(HEALTHY, FetchError("GET /props: timed out after 0.5s"), reply("/metrics", status=404),
                      reply("/slots", {"not": "a list"}))
    assert r.status is Status.OK
    assert r.error == ("GET /props: timed out after 0.5s; GET /metrics: HTTP 404 (start llama-server with"
                       " --metrics); GET /slots: unexpected shape (want a list of slots with is_processing)")
    assert (r.slots_total, r.requests_running, r.slots_idle) == (None, None, None)


def test_llamacpp_reads_one_slots_context_and_the_modalities_from_props() -> None:
    # As the real llama-server says it when started with -c 1024 -np 2 (the context is per slot).
    props = reply("/props", {"total_slots": 2, "is_sleeping": False, "endpoint_metrics": True,
                             "default_generation_settings": {"n_ctx": 512, "temperature": 0.8},
                             "modalities": {"vision": True, "video": False, "audio": False}})
    r = llamacpp.read(HEALTHY, props, LLAMA_METRICS)
    assert r.status is Status.OK and r.error is None
    assert (r.context_tokens, r.vision, r.audio) == (512, True, False)

    asleep = reply("/props", {"total_slots": 2, "is_sleeping": True, "default_generation_settings": {"n_ctx": 512}})
    assert llamacpp.read(HEALTHY, asleep).context_tokens == 512  # what it can take does not sleep


@pytest.mark.parametrize("props", [
    {"total_slots": 2},  # an older release: no modalities
    {"default_generation_settings": {"n_ctx": "512"}, "modalities": ["vision"]},
    {"default_generation_settings": {"n_ctx": 0}, "modalities": {"vision": "yes", "audio": 1}},
    {"default_generation_settings": {"n_ctx": True}, "modalities": {"vision": None}},
    {"default_generation_settings": [512], "modalities": None},
    {"default_generation_settings": {"n_ctx": -1}},
])
def test_llamacpp_limits_it_cannot_read_stay_unknown(props: dict[str, Any]) -> None:
    r = llamacpp.read(HEALTHY, reply("/props", props), LLAMA_METRICS)
    assert r.status is Status.OK and (r.context_tokens, r.vision, r.audio) == (None, None, None)
    assert llamacpp.read(HEALTHY, FetchError("GET /props: timed out after 0.5s"), LLAMA_METRICS).context_tokens is None
    assert llamacpp.read(reply("/health", status=503)).context_tokens is None  # loading: nothing read


# -- vLLM -------------------------------------------------------------------------------

#: vLLM's /v1/models: the base model with max_model_len, a LoRA adapter without (vLLM
#: vllm/entrypoints/openai/models/serving.py, show_available_models).
VLLM_MODELS = {"object": "list", "data": [
    {"id": "gemma4-fast", "object": "model", "created": 1, "owned_by": "vllm", "root": "/models/gemma",
     "parent": None, "max_model_len": 8192, "permission": [{"id": "modelperm-1", "object": "model_permission"}]},
    {"id": "my-lora", "object": "model", "created": 1, "owned_by": "vllm", "root": "/loras/a",
     "parent": "gemma4-fast", "max_model_len": None, "permission": []},
]}


def test_vllm_reads_max_model_len_from_v1_models() -> None:
    metrics = reply("/metrics", "vllm:num_requests_running 1\nvllm:num_requests_waiting 0\n")
    r = vllm.read(HEALTHY, metrics, reply("/v1/models", VLLM_MODELS))
    assert r.status is Status.OK and r.error is None and r.context_tokens == 8192
    assert (r.vision, r.audio) == (None, None)  # vLLM does not say

    asleep = vllm.read(HEALTHY, reply("/metrics", 'vllm:engine_sleep_state{sleep_state="awake"} 0\n'),
                       reply("/v1/models", VLLM_MODELS))
    assert asleep.status is Status.LOADING and asleep.context_tokens == 8192


def test_vllm_models_that_cannot_be_read_only_leave_the_context_unknown() -> None:
    metrics = reply("/metrics", "vllm:num_requests_running 1\nvllm:num_requests_waiting 0\n")
    for models, problem in [
        (reply("/v1/models", {"error": "unauthorized"}, status=401), "GET /v1/models: HTTP 401 (check the target's api_key)"),
        (FetchError("GET /v1/models: timed out after 0.5s"), "GET /v1/models: timed out after 0.5s"),
        (reply("/v1/models", "<html>"), "GET /v1/models: reply is not JSON"),
        (reply("/v1/models", {"models": []}), "GET /v1/models: reply has no 'data' list"),
        (reply("/v1/models", {"data": [{"id": "old-vllm"}]}),
         "GET /v1/models: no max_model_len (the context window stays unknown)"),
    ]:
        r = vllm.read(HEALTHY, metrics, models)
        assert r.status is Status.OK and r.context_tokens is None and r.requests_running == 1, problem
        assert r.error == problem
    assert vllm.read(HEALTHY, metrics).context_tokens is None  # not fetched: nothing said


def test_vllm_reads_the_fullest_engine_and_sleep() -> None:
    text = ('vllm:num_requests_running{engine="0"} 2\nvllm:num_requests_running{engine="1"} 1\n'
            'vllm:num_requests_waiting{engine="0"} 0\nvllm:kv_cache_usage_perc{engine="0"} 0.2\n'
            'vllm:kv_cache_usage_perc{engine="1"} 0.7\n')
    r = vllm.read(HEALTHY, reply("/metrics", text))
    assert r.status is Status.OK and (r.requests_running, r.requests_waiting) == (3, 0)
    assert r.kv_cache_usage == 0.7

    asleep = vllm.read(HEALTHY, reply("/metrics", text + 'vllm:engine_sleep_state{sleep_state="awake"} 0\n'))
    assert asleep.status is Status.LOADING and asleep.model_loaded is False
    assert vllm.read(reply("/health", status=503), None).status is Status.DOWN


def test_vllm_names_the_gauges_it_missed() -> None:
    r = vllm.read(HEALTHY, reply("/metrics", "vllm:num_requests_running 1\n"))
    assert r.status is Status.OK and r.error == "GET /metrics: no vllm:num_requests_waiting"


# -- llama-swap ------------------------------------------------------------------------


def test_llama_swap_reads_the_state_of_its_model_only() -> None:
    running = reply("/running", {"running": [{"model": "fast", "state": "ready"}]})
    assert llama_swap.read(running, "fast").status is Status.OK
    cold = llama_swap.read(running, "smart")
    assert cold.status is Status.LOADING and cold.model_loaded is False
    r = llama_swap.read(reply("/running", status=403), "smart")
    assert r.status is Status.DOWN and r.error == "GET /running: HTTP 403 (check the target's api_key)"


# -- detection -----------------------------------------------------------------------


def test_each_clue_recognises_its_kind_and_nothing_else() -> None:
    assert detect.from_running(reply("/running", {"running": []})) == "llama-swap"
    assert detect.from_running(reply("/running", b'{"error":{"message":"Loading model"}}', status=503)) == "llamacpp"
    assert detect.from_running(reply("/running", {"detail": "Not Found"}, status=404)) is None
    assert detect.from_metrics(reply("/metrics", "vllm:num_requests_running 0\n")) == "vllm"
    assert detect.from_metrics(reply("/metrics", "llamacpp:requests_processing 0\n")) == "llamacpp"
    assert detect.from_metrics(reply("/metrics", "python_gc_objects_collected_total 1\n")) is None
    assert detect.from_props(PROPS) == "llamacpp"
    assert detect.from_props(reply("/props", "<html>")) is None
