"""Warm-up: a one-token completion that makes a backend load a cold model."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx

from .load import BackendTarget

logger = logging.getLogger("stratum_litellm.backends")


def send(tier: str, target: BackendTarget, timeout_s: float, connect_timeout_s: float) -> None:
    """POST a one-token chat completion to ``target`` and log the outcome; never raises.

    The reply only comes once the model is loaded, hence the long read timeout
    ``timeout_s``. It runs on a helper thread with a client of its own, so a minute-long
    load blocks neither the poller nor the request that asked for it.
    """
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 1,
        "stream": False,
    }
    if target.model is not None:
        body["model"] = target.model
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else None
    started = time.monotonic()
    try:
        with httpx.Client(timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s)) as client:
            response = client.post(f"{target.url}/v1/chat/completions", json=body, headers=headers)
        if response.status_code == 200:
            logger.info("warm-up of tier %s (%s) done in %.1fs", tier, target.url, time.monotonic() - started)
        else:
            logger.warning("warm-up of tier %s (%s) got HTTP %d", tier, target.url, response.status_code)
    except httpx.HTTPError as exc:
        logger.warning("warm-up of tier %s (%s) failed: %s: %s", tier, target.url, type(exc).__name__, exc)
    except Exception:  # noqa: BLE001 - a helper thread must not die noisily
        logger.exception("warm-up of tier %s failed", tier)
