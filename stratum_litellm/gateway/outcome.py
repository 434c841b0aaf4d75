"""What a finished call says about the tier that took it.

Only the tier's own failures may count against it: the backend refused the connection,
timed out, answered 5xx (or 429: it has no room), or broke a stream. Everything else that
reaches the failure callback is the request's doing or the gateway's (a body LiteLLM cannot
even send, a 4xx the backend gave the request, the gateway's own rate limits, a client
that went away) and must not touch a tier's health or latency, or one client could switch
a tier off for everyone.

LiteLLM wraps what went wrong (``litellm.APIConnectionError`` over a ``TypeError`` raised
before any backend was called; ``InternalServerError`` over ``httpx.HTTPStatusError`` for a
real 500), so the whole chain of causes is read, by type name and attributes: LiteLLM,
httpx, aiohttp and openai are never imported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from enum import Enum
from typing import Any

#: Transport failures between the gateway and a backend (httpx, aiohttp, openai, LiteLLM).
_TRANSPORT = frozenset({
    "ConnectError", "ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "ReadError", "WriteError",
    "RemoteProtocolError", "LocalProtocolError", "ClientConnectorError", "ClientConnectionError",
    "ServerDisconnectedError", "ServerTimeoutError", "ClientPayloadError", "ClientOSError", "SocketTimeoutError",
    "APITimeoutError", "Timeout", "IncompleteRead", "ChunkedEncodingError",
})
# Replies of a backend that mean the tier itself cannot serve (a 4xx other than 429 is the
# request's fault: too long, bad parameters).
_TIER_STATUS_MIN = 500
_NO_ROOM = 429
_CHAIN_LIMIT = 12


class Outcome(str, Enum):
    __str__ = str.__str__

    #: Served: its times count.
    SERVED = "served"
    #: Served, but the client closed the stream early: the first token's time counts, the
    #: total (cut short) does not.
    CUT_SHORT = "cut_short"
    #: The tier failed: counts toward its health.
    TIER_FAILED = "tier_failed"
    #: Failed for a reason that is not the tier's: only leaves the in-flight count.
    NOT_THE_TIER = "not_the_tier"


def outcome(kwargs: Mapping[str, Any], ok: bool) -> Outcome:
    """Classify one success or failure callback's keyword arguments."""
    if ok:
        return Outcome.CUT_SHORT if _client_disconnected(kwargs) else Outcome.SERVED
    return Outcome.TIER_FAILED if blames_tier(kwargs.get("exception")) else Outcome.NOT_THE_TIER


def blames_tier(exc: object) -> bool:
    """True when an exception (or one of its causes) is the backend's failure."""
    for link in _chain(exc):
        if _is_transport(link):
            return True
        status = _backend_status(link)
        if status is not None:
            return status >= _TIER_STATUS_MIN or status == _NO_ROOM
    return False


def _chain(exc: object) -> Iterator[BaseException]:
    seen: set[int] = set()
    while isinstance(exc, BaseException) and id(exc) not in seen and len(seen) < _CHAIN_LIMIT:
        seen.add(id(exc))
        yield exc
        exc = getattr(exc, "original_exception", None) or exc.__cause__ or exc.__context__


def _is_transport(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError, asyncio.TimeoutError)):
        return True  # refused, reset, broken pipe; asyncio and socket timeouts
    return type(exc).__name__ in _TRANSPORT


def _backend_status(exc: BaseException) -> int | None:
    """The HTTP status of a reply a backend really sent, or None.

    httpx's ``HTTPStatusError`` and openai's ``APIStatusError`` family exist only for a
    reply received; LiteLLM's own exceptions carry a status even for errors it raised
    itself, so theirs is not trusted."""
    name, module = type(exc).__name__, type(exc).__module__ or ""
    if name == "HTTPStatusError" or (module.startswith("openai") and hasattr(exc, "response")):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        return status if isinstance(status, int) else None
    return None


def _client_disconnected(kwargs: Mapping[str, Any]) -> bool:
    # LiteLLM records a client that closed a stream early as a success whose error
    # information says ClientDisconnected (code 499).
    slo = kwargs.get("standard_logging_object")
    info = slo.get("error_information") if isinstance(slo, Mapping) else None
    if not isinstance(info, Mapping):
        return False
    return info.get("error_class") == "ClientDisconnected" or str(info.get("error_code")) == "499"
