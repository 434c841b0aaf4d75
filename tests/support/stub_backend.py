"""A small OpenAI-compatible server, run as its own process: ``python tests/support/stub_backend.py --port N``.

It exists ONLY for behaviours that real backends (llama-server with a real model) cannot give
on demand: a stall before the first token, a slow token rate, an HTTP error. Everything that a
real backend can show (real text, real usage, real queueing, /metrics) is tested against
llama-server instead; see tests/support/servers.py.

Endpoints:
  POST /v1/chat/completions  streaming (SSE, a final usage chunk, ``data: [DONE]``) and not
  GET  /v1/models, GET /health
  POST /admin/behaviour      partial update of {"ttft_ms", "token_interval_ms", "tokens",
                             "status", "fail", "judge"}; returns the whole behaviour

``judge`` makes it a judge that follows a rule no real model can be made to follow on
demand: ``{"needle": "pelican", "match": 1, "otherwise": 5}`` answers every completion
with ``{"rating": R, "reason": "..."}``, R = ``match`` when the needle is in the request's
``[Conversation]`` part (the router's judge prompt) and ``otherwise`` when it is not.
  GET  /admin/requests       {"count": n, "requests": [{"model": ..., "messages": k}, ...]}
  DELETE /admin/requests     forget received requests

With ``status`` != 200 or ``fail`` the completion is an error (``fail`` alone gives 500).
Streaming replies send headers at once and wait ``ttft_ms`` before the first chunk, as vLLM and
OpenAI do, so a stall looks like a slow first token rather than a slow connection.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

DEFAULT_BEHAVIOUR: dict[str, Any] = {
    "ttft_ms": 0,
    "token_interval_ms": 0,
    "tokens": 8,
    "status": 200,
    "fail": False,
    "judge": None,
}


def make_app(name: str, models: list[str]) -> Starlette:
    behaviour = dict(DEFAULT_BEHAVIOUR)
    received: list[dict[str, Any]] = []
    #: Requests being answered now, and the most at once since the last clear.
    active = [0, 0]

    def words(n: int) -> list[str]:
        # First token names the backend so a test can tell which tier answered.
        return [name] + [f" tok{i}" for i in range(1, n)]

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "body is not JSON", "invalid_request_error")
        messages = body.get("messages") or []
        received.append({"model": body.get("model"), "messages": len(messages)})
        active[0] += 1
        active[1] = max(active[1], active[0])
        try:
            response = await reply(body, messages)
        except BaseException:
            active[0] -= 1
            raise
        if not isinstance(response, StreamingResponse):
            active[0] -= 1
            return response
        stream = response.body_iterator

        async def counted() -> AsyncIterator[Any]:
            try:
                async for chunk in stream:
                    yield chunk
            finally:  # also when the client leaves mid-stream
                active[0] -= 1

        response.body_iterator = counted()
        return response

    async def reply(body: dict[str, Any], messages: list[Any]) -> Response:
        b = dict(behaviour)  # snapshot: an admin update mid-request must not change this reply

        if b["fail"] or b["status"] != 200:
            await asyncio.sleep(b["ttft_ms"] / 1000)
            status = b["status"] if b["status"] != 200 else 500
            return _error(status, f"{name}: injected failure", "server_error")

        n = int(b["tokens"])
        if body.get("max_tokens"):
            n = max(1, min(n, int(body["max_tokens"])))
        toks = words(n)
        if b["judge"]:
            toks, n = [_verdict(b["judge"], messages)], 1
        model = body.get("model") or name
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        usage = {
            "prompt_tokens": sum(len(str(m.get("content", "")).split()) for m in messages),
            "completion_tokens": n,
        }
        usage["total_tokens"] = usage["prompt_tokens"] + n

        if not body.get("stream"):
            await asyncio.sleep((b["ttft_ms"] + b["token_interval_ms"] * (n - 1)) / 1000)
            return JSONResponse({
                "id": cid, "object": "chat.completion", "created": created, "model": model,
                "choices": [{"index": 0, "finish_reason": "length" if n < b["tokens"] else "stop",
                             "message": {"role": "assistant", "content": "".join(toks)}}],
                "usage": usage,
            })

        async def events() -> AsyncIterator[str]:
            def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
                return "data: " + json.dumps({
                    "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }) + "\n\n"

            await asyncio.sleep(b["ttft_ms"] / 1000)
            for i, tok in enumerate(toks):
                if i:
                    await asyncio.sleep(b["token_interval_ms"] / 1000)
                yield chunk({"role": "assistant", "content": tok} if i == 0 else {"content": tok})
            yield chunk({}, "stop")
            # Always sent (clients that did not ask ignore a chunk with no choices).
            yield "data: " + json.dumps({
                "id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [], "usage": usage,
            }) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def list_models(_: Request) -> Response:
        return JSONResponse({"object": "list", "data": [
            {"id": m, "object": "model", "created": 0, "owned_by": name} for m in models]})

    async def health(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def set_behaviour(request: Request) -> Response:
        update = await request.json()
        unknown = set(update) - set(DEFAULT_BEHAVIOUR)
        if unknown:
            return _error(400, f"unknown behaviour keys: {sorted(unknown)}", "invalid_request_error")
        behaviour.update(update)
        return JSONResponse(behaviour)

    async def get_requests(_: Request) -> Response:
        return JSONResponse({"count": len(received), "requests": received, "active": active[0], "peak": active[1]})

    async def clear_requests(_: Request) -> Response:
        received.clear()
        active[1] = active[0]
        return JSONResponse({"count": 0, "requests": []})

    return Starlette(routes=[
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/admin/behaviour", set_behaviour, methods=["POST"]),
        Route("/admin/requests", get_requests, methods=["GET"]),
        Route("/admin/requests", clear_requests, methods=["DELETE"]),
    ])


def _verdict(rule: dict[str, Any], messages: list[Any]) -> str:
    last = str(messages[-1].get("content", "")) if messages and isinstance(messages[-1], dict) else ""
    conversation = last.split("[Reference answer]")[0]
    found = str(rule["needle"]).lower() in conversation.lower()
    rating = rule["match"] if found else rule["otherwise"]
    return json.dumps({"rating": rating, "reason": f"the rule: {rule['needle']!r} {'in' if found else 'not in'} it"})


def _error(status: int, message: str, kind: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "code": status}}, status_code=status)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--name", default="stub", help="named in every reply, e.g. fast-stub")
    ap.add_argument("--model", action="append", help="model id for /v1/models (repeatable; default: --name)")
    args = ap.parse_args()
    app = make_app(args.name, args.model or [args.name])
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
