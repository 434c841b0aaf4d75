"""What a reader makes of one backend's replies, and the helpers every reader shares.

Readers are pure: they take replies already fetched and return a :class:`Reading`. A
*secondary* reply (one whose absence leaves the backend serving, e.g. ``/metrics``) that
failed adds a line to ``problems`` instead of making the backend ``down``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..status import Status
from . import prometheus
from .fetch import Answer, FetchError, Reply


@dataclass(frozen=True, slots=True)
class Reading:
    """What one poll of one target found, before the poller stamps it into a BackendLoad."""

    status: Status
    error: str | None = None
    requests_running: int | None = None
    requests_waiting: int | None = None
    kv_cache_usage: float | None = None
    slots_total: int | None = None
    slots_idle: int | None = None
    model_loaded: bool | None = None
    #: What the model can take, as the backend says (see :class:`BackendLoad`).
    context_tokens: int | None = None
    vision: bool | None = None
    audio: bool | None = None


def asleep_or_serving(asleep: str | None, problems: list[str], **load: Any) -> Reading:
    """A backend that answered: asleep (``asleep`` says why; its model is not loaded) or serving."""
    if asleep is not None:
        return Reading(Status.LOADING, asleep, model_loaded=False, **load)
    return Reading(Status.OK, "; ".join(problems) or None, model_loaded=True, **load)


def usable(answer: Answer | None, problems: list[str], hint: str = "") -> Reply | None:
    """The reply if it is a 200; otherwise note why not in ``problems`` (``hint`` says how
    to enable an endpoint that is missing) and return None. None in: not fetched."""
    if answer is None:
        return None
    if isinstance(answer, FetchError):
        problems.append(str(answer))
        return None
    if answer.status != 200:
        extra = ""
        if answer.status in (404, 501) and hint:
            extra = f" ({hint})"
        elif answer.status in (401, 403):
            extra = " (check the target's api_key)"
        problems.append(f"GET {answer.path}: HTTP {answer.status}{extra}")
        return None
    return answer


def json_of(answer: Answer | None, problems: list[str], hint: str = "") -> Any:
    """The decoded JSON of a usable reply, or None (noted in ``problems``)."""
    reply = usable(answer, problems, hint)
    if reply is None:
        return None
    try:
        return reply.json()
    except ValueError:
        problems.append(f"GET {reply.path}: reply is not JSON")
        return None


def metrics_of(
    answer: Answer | None, names: Collection[str], problems: list[str], hint: str
) -> prometheus.Metrics | None:
    """The wanted gauges of a usable ``/metrics`` reply, or None (noted in ``problems``)."""
    reply = usable(answer, problems, hint)
    if reply is None:
        return None
    try:
        return prometheus.parse(reply.text(), names)
    except Exception as exc:  # the parser raises more than ValueError on odd input
        problems.append(f"GET {reply.path}: not Prometheus text ({type(exc).__name__}: {exc})")
        return None
