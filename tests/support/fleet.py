"""Driving several real gateways that share one Redis: where they find it, one request
through one of them, and waiting until each reads the shared state as up."""

from __future__ import annotations

from typing import Any

import httpx

from conftest import SIMPLE_PROMPT
from gateway import Gateway
from waiting import wait_until


#: ``shared_state`` for tests whose subject is not how long a request may wait on Redis
#: (tests/integration pause and cut Redis for that): a claim or a conversation's look-up
#: that Redis does not answer within ``budget_ms`` (50 ms by default) is refused by design,
#: and on a loaded 2-core machine one now and then is not answered that fast.
PATIENT = {"budget_ms": 1000}


def redis_env(redis_url: str) -> dict[str, str]:
    """Where the repository's config (router_settings.redis_host / redis_port) finds Redis."""
    host, port = redis_url.removeprefix("redis://").split(":")
    return {"REDIS_HOST": host, "REDIS_PORT": port}


async def ask(gw: Gateway, prompt: str, stream: bool = False, messages: list[dict[str, str]] | None = None,
              timeout: float = 60.0) -> tuple[str, str]:
    """One chat request through ``gw``: the tier and the reason it reports."""
    body: dict[str, Any] = {"model": "gemma4-auto", "stream": stream, "max_tokens": 8,
                            "messages": messages or [{"role": "user", "content": prompt}]}
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=timeout,
                                 headers={"Authorization": f"Bearer {gw.master_key}"}) as client:
        r = await client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        r.read()
        return r.headers["x-stratum-tier"], r.headers["x-stratum-reason"]


def shared_up(gw: Gateway) -> float | None:
    return gw.metric("stratum_shared_state_up")


async def warm(*gws: Gateway, prompt: str = SIMPLE_PROMPT) -> None:
    """A first request through each, then wait until each reads its shared state as up."""
    for gw in gws:
        await ask(gw, prompt)
    wait_until(lambda: all(shared_up(gw) == 1 for gw in gws), timeout=10)
