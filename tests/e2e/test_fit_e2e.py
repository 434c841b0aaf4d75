"""A request goes only to a tier that can take it, through the real gateway (the
repository's config as it is): each tier's context read from its real llama-server
(``/props``: one slot's context), a long hard request sent where its context holds it, a
short one still to the smart tier.

Both tiers are real llama-servers (SmolLM2): the smart one with a short context per slot,
the fast one with a long one, as a 26B model on a 24 GB card often is beside a small one.
No model here takes images, so in the image test the tier that does is the stub backend,
with ``tiers.smart.limits.vision: true``: the one behaviour no real backend here can give.
"""

from __future__ import annotations

from typing import Any, Iterator

import httpx
import pytest

from conftest import COMPLEX_PROMPT
from gateway import Gateway
from servers import LlamaServer, StubBackend
from waiting import wait_until

pytestmark = pytest.mark.llama_server

# About 2,000 tokens of prose: more than the smart tier's 1,024 per slot, well within the fast one's 4,096.
DOCUMENT = ("The supplier shall deliver the goods described in the schedule to the buyer's premises within "
            "thirty days of the order, and shall bear the risk of loss until delivery is complete. ") * 50


@pytest.fixture(scope="module")
def short_smart(llama_build: Any) -> Iterator[LlamaServer]:
    with LlamaServer(alias="gemma4-smart", slots=2, ctx=2048) as server:  # 1,024 tokens a slot
        yield server


@pytest.fixture(scope="module")
def long_fast(llama_build: Any) -> Iterator[LlamaServer]:
    with LlamaServer(alias="gemma4-fast", slots=2, ctx=8192) as server:  # 4,096 tokens a slot
        yield server


def ask(gw: Gateway, content: Any, model: str = "gemma4-auto", **extra: Any) -> httpx.Response:
    return httpx.post(f"{gw.base_url}/v1/chat/completions", timeout=300,
                      headers={"Authorization": f"Bearer {gw.master_key}"},
                      json={"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": content}],
                            **extra})


def test_a_long_hard_request_goes_to_the_tier_whose_context_holds_it(long_fast: LlamaServer,
                                                                      short_smart: LlamaServer) -> None:
    with Gateway(long_fast.api_base, short_smart.api_base) as gw:
        ask(gw, "hello")  # the backend pollers start with the first request
        assert wait_until(lambda: gw.metric("stratum_backend_slots", tier="smart") == 2, 30, 0.2), gw.log_tail()

        # Without the router's fit the smart tier fails it: its slot cannot hold it.
        direct = ask(gw, COMPLEX_PROMPT + "\n\n" + DOCUMENT, model="gemma4-smart", disable_fallbacks=True)
        assert direct.status_code >= 400, direct.text[:300]
        assert "context" in direct.text.lower(), direct.text[:300]

        routed = ask(gw, COMPLEX_PROMPT + "\n\n" + DOCUMENT)
        assert routed.status_code == 200, routed.text[:300]
        assert (routed.headers["x-stratum-tier"], routed.headers["x-stratum-reason"]) == ("fast", "context_fit")
        assert routed.json()["choices"][0]["message"]["content"] is not None
        assert gw.metric("stratum_decisions_total", tier="fast", reason="context_fit") == 1

        short = ask(gw, COMPLEX_PROMPT)
        assert short.status_code == 200, short.text[:300]
        assert (short.headers["x-stratum-tier"], short.headers["x-stratum-reason"]) == ("smart", "complex")

        # A longer answer asked for counts too: the short hard question with 1,000 tokens to
        # answer in does not fit a 1,024-token slot.
        asked = ask(gw, COMPLEX_PROMPT, max_tokens=1_000)
        assert (asked.headers["x-stratum-tier"], asked.headers["x-stratum-reason"]) == ("fast", "context_fit")


def test_an_image_goes_to_the_tier_that_takes_images(long_fast: LlamaServer) -> None:
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    with StubBackend(name="vision-stub") as vision:
        settings = {"tiers": {"smart": {"model_group": "gemma4-smart", "limits": {"vision": True}}}}
        with Gateway(long_fast.api_base, vision.api_base, stratum=settings) as gw:
            ask(gw, "hello")
            # The fast llama-server says at /props it takes no images.
            assert wait_until(lambda: gw.metric("stratum_backend_slots", tier="fast") == 2, 30, 0.2), gw.log_tail()
            routed = ask(gw, [{"type": "text", "text": "what is in this picture?"}, image])
            assert routed.status_code == 200, routed.text[:300]
            assert (routed.headers["x-stratum-tier"], routed.headers["x-stratum-reason"]) == ("smart", "modality_fit")
            assert routed.json()["choices"][0]["message"]["content"].startswith("vision-stub")
            plain = ask(gw, "what is a picture?")
            assert plain.headers["x-stratum-tier"] == "fast"
