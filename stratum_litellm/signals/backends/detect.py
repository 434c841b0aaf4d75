"""Kind ``auto``: tell what serves at a URL from what answers.

Clues are tried in order, each a GET and a pure test of its reply: ``/running`` (a
llama-swap list, or llama-server's 503 "Loading model" that it gives on every path),
``/metrics`` (``vllm:`` or ``llamacpp:`` names), ``/props`` (llama.cpp's fields).
"""

from __future__ import annotations

from collections.abc import Callable

from .fetch import Fetcher, Reply
from .load import BackendTarget


def detect(fetcher: Fetcher, target: BackendTarget) -> str | None:
    """The kind serving ``target``, or None if no clue matched. A transport error raises
    ``FetchError``: nothing answers, the target is down."""
    for path, recognise in _CLUES:
        kind = recognise(fetcher.get(target, path))
        if kind is not None:
            return kind
    return None


def from_running(reply: Reply) -> str | None:
    if reply.status == 503 and b"Loading model" in reply.body:
        return "llamacpp"  # llama-server answers 503 on every path while it loads
    if reply.status == 200:
        body = _json(reply)
        if isinstance(body, dict) and isinstance(body.get("running"), list):
            return "llama-swap"
    return None


def from_metrics(reply: Reply) -> str | None:
    if reply.status == 200:
        text = reply.text()
        if "vllm:" in text:
            return "vllm"
        if "llamacpp:" in text:
            return "llamacpp"
    return None


def from_props(reply: Reply) -> str | None:
    if reply.status == 200:
        body = _json(reply)
        if isinstance(body, dict) and ("total_slots" in body or "default_generation_settings" in body):
            return "llamacpp"
    return None


_CLUES: tuple[tuple[str, Callable[[Reply], str | None]], ...] = (
    ("/running", from_running),
    ("/metrics", from_metrics),
    ("/props", from_props),
)


def _json(reply: Reply) -> object:
    try:
        return reply.json()
    except ValueError:
        return None
