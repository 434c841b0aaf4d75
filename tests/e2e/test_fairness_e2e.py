"""Through a real gateway: one user's requests past max_in_flight_per_user go to the fast
tier while another user's still reach smart. The smart backend is the stub, slowed down
on demand so requests stay in flight long enough to overlap (no real backend stalls on
demand); the user is the request's `user` field, as Open WebUI can send it."""

from __future__ import annotations

import asyncio

import httpx

from conftest import COMPLEX_PROMPT
from gateway import Gateway
from servers import StubBackend

SETTINGS = {"latency": {"sla_ms": 120_000},
            "tiers": {"smart": {"max_in_flight_per_user": 2, "backend": "off"}}}


async def test_one_user_cannot_take_every_smart_slot() -> None:
    with StubBackend(name="fast-stub") as fast, StubBackend(name="smart-stub") as smart, \
            Gateway(fast.api_base, smart.api_base, stratum=SETTINGS) as gw:
        smart.set_behaviour(ttft_ms=4000)
        headers = {"Authorization": f"Bearer {gw.master_key}"}
        async with httpx.AsyncClient(base_url=gw.base_url, headers=headers, timeout=60) as client:

            async def ask(user: str, delay: float) -> tuple[str, str]:
                await asyncio.sleep(delay)
                r = await client.post("/v1/chat/completions", json={
                    "model": "gemma4-auto", "user": user, "messages": [{"role": "user", "content": COMPLEX_PROMPT}]})
                assert r.status_code == 200, r.text
                return r.headers["x-stratum-tier"], r.headers["x-stratum-reason"]

            # The script's first two are in flight (4 s each) when its third and Alice's arrive.
            results = await asyncio.gather(ask("script", 0), ask("script", 0), ask("script", 1.5), ask("alice", 2.0))
        assert results[:2] == [("smart", "complex")] * 2
        assert results[2] == ("fast", "smart_user_limit")
        assert results[3] == ("smart", "complex")
        assert gw.metric("stratum_decisions_total", tier="fast", reason="smart_user_limit") == 1
