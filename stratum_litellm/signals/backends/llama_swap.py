"""Reader of llama-swap: ``/running`` only.

``/running`` answers ``{"running": [{"model": id, "state": "ready", ...}]}``
(proxy/proxymanager.go, listRunningProcessesHandler); current releases list only ready
processes, early ones listed starting/stopping ones too, with their state. The
``/upstream/<model>/...`` pass-through is deliberately not read: every proxied request
starts the model if it is not loaded and restarts its ``ttl`` countdown, so polling
through it would load the smart model and keep it resident for ever.

For the same reason it reports no limits of the model (context window, images, audio):
``/running`` says none, and the model's own ``/props`` is only reachable through that
pass-through. They stay unknown unless ``tiers.<tier>.limits`` or the group's
``model_info`` say them (:mod:`stratum_litellm.signals.limits`).
"""

from __future__ import annotations

from ..status import Status
from .fetch import Fetcher, Reply
from .load import BackendTarget
from .reading import Reading


def poll(fetcher: Fetcher, target: BackendTarget) -> Reading:
    """Fetch ``/running`` (raises ``FetchError`` when it cannot be had) and read it."""
    return read(fetcher.get(target, "/running"), target.model)


def read(running: Reply, model: str | None) -> Reading:
    """Whether ``model`` is loaded, from llama-swap's ``/running`` reply."""
    if running.status != 200:
        hint = " (check the target's api_key)" if running.status in (401, 403) else ""
        return Reading(Status.DOWN, f"GET /running: HTTP {running.status}{hint}")
    try:
        body = running.json()
    except ValueError:
        return Reading(Status.DOWN, "GET /running: reply is not JSON (is this llama-swap?)")
    entries = body.get("running") if isinstance(body, dict) else None
    if not isinstance(entries, list):
        return Reading(Status.DOWN, "GET /running: reply has no 'running' list (is this llama-swap?)")
    if model is None:  # only reachable through kind "auto"
        return Reading(Status.OK, "no model set for this llama-swap target; cannot tell if it is loaded")
    match = next((e for e in entries if isinstance(e, dict) and e.get("model") == model), None)
    if match is None:
        return Reading(
            Status.LOADING,
            f"model {model!r} is not loaded in llama-swap (the next request loads it)",
            model_loaded=False,
        )
    state = match.get("state", "ready")  # listed without a state: only ready ones are listed
    if state != "ready":
        return Reading(Status.LOADING, f"model {model!r} is {state!s:.40} in llama-swap", model_loaded=False)
    return Reading(Status.OK, None, model_loaded=True)
