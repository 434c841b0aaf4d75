"""Which failures are a tier's: chains of causes built from the real exception classes
LiteLLM raises and wraps (as read from its callbacks through a real gateway, see
tests/e2e/test_tier_health_e2e.py)."""

from __future__ import annotations

import aiohttp
import httpx
import litellm
import openai
import pytest

from stratum_litellm.gateway.outcome import Outcome, blames_tier, outcome

REQUEST = httpx.Request("POST", "http://127.0.0.1:8082/v1/chat/completions")


def caused(top: BaseException, *causes: BaseException) -> BaseException:
    """``top`` raised from ``causes[0]``, raised from ``causes[1]``..."""
    chain = (top, *causes)
    for outer, inner in zip(chain, chain[1:]):
        outer.__cause__ = inner
    return top


def backend_reply(status: int) -> BaseException:
    response = httpx.Response(status, request=REQUEST)
    status_error = httpx.HTTPStatusError(f"{status}", request=REQUEST, response=response)
    kind = {400: openai.BadRequestError, 429: openai.RateLimitError, 503: openai.InternalServerError}.get(
        status, openai.InternalServerError)
    wrapped = litellm.InternalServerError if status >= 500 else litellm.BadRequestError
    if status == 429:
        wrapped = litellm.RateLimitError
    return caused(wrapped(message="x", llm_provider="openai", model="m"),
                  kind("x", response=response, body=None), status_error)


@pytest.mark.parametrize("exc, tier_failed", [
    # LiteLLM fails a body it cannot even send (second message "content": 5) before any backend.
    (caused(litellm.APIConnectionError(message="'int' object is not iterable", llm_provider="openai", model="m"),
            TypeError("'int' object is not iterable")), False),
    (litellm.BadRequestError(message="Invalid model name", llm_provider="", model="m"), False),
    (backend_reply(400), False),
    (backend_reply(500), True),
    (backend_reply(503), True),
    (backend_reply(429), True),  # the backend has no room
    (caused(litellm.InternalServerError(message="x", llm_provider="openai", model="m"),
            openai.APIConnectionError(request=REQUEST), httpx.ConnectError("refused"),
            ConnectionRefusedError(111, "Connection refused")), True),
    (caused(litellm.Timeout(message="x", model="m", llm_provider="openai"), httpx.ReadTimeout("read")), True),
    # A backend killed mid-stream: aiohttp's payload error under httpx's ReadError.
    (caused(httpx.ReadError("payload"), aiohttp.ClientPayloadError("Response payload is not completed")), True),
    (ValueError("the gateway's own check"), False),
    (None, False),
])
def test_only_the_backends_own_failures_blame_the_tier(exc: BaseException | None, tier_failed: bool) -> None:
    assert blames_tier(exc) is tier_failed
    assert outcome({"exception": exc}, ok=False) is (Outcome.TIER_FAILED if tier_failed else Outcome.NOT_THE_TIER)


def test_a_cycle_in_the_causes_ends() -> None:
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert blames_tier(a) is False


def test_a_stream_the_client_closed_is_cut_short() -> None:
    info = {"error_code": "499", "error_class": "ClientDisconnected", "error_message": "Client disconnected the request"}
    assert outcome({"standard_logging_object": {"error_information": info}}, ok=True) is Outcome.CUT_SHORT
    assert outcome({"standard_logging_object": {"error_information": {"error_code": ""}}}, ok=True) is Outcome.SERVED
    assert outcome({}, ok=True) is Outcome.SERVED
