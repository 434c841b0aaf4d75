"""Whether a gateway config gives LiteLLM a Redis, and where (plain data, no LiteLLM).

The router uses the Redis LiteLLM itself is configured with, so the operator keeps one
connection setting. This reads the same places LiteLLM does, to decide at start-up whether
``shared_state: auto`` shares and whether ``required`` may start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ...config import SettingsError, StratumSettings, environment_value

logger = logging.getLogger("stratum_litellm")


def redis_source(document: Any, environ: Mapping[str, str]) -> str | None:
    """Where the gateway's Redis is configured (for the log and ``stratum check``), or None."""
    config = document if isinstance(document, Mapping) else {}
    router = config.get("router_settings")
    if isinstance(router, Mapping):
        if _given(router.get("redis_url"), environ):
            return "router_settings.redis_url"
        # LiteLLM's Router takes a host only with its port.
        if _given(router.get("redis_host"), environ) and _given(router.get("redis_port"), environ):
            return "router_settings.redis_host"
    litellm_settings = config.get("litellm_settings")
    if isinstance(litellm_settings, Mapping) and litellm_settings.get("cache"):
        params = litellm_settings.get("cache_params")
        kind = params.get("type", "redis") if isinstance(params, Mapping) else "redis"
        if kind in ("redis", "redis-semantic"):
            return "litellm_settings.cache_params (type: redis)"
    general = config.get("general_settings")
    if isinstance(general, Mapping) and general.get("coordination_redis"):
        return "general_settings.coordination_redis"
    for name in ("REDIS_URL", "REDIS_HOST"):
        if environ.get(name):
            return f"the {name} environment variable"
    return None


def _given(value: Any, environ: Mapping[str, str]) -> bool:
    """A value set in the file, or an ``os.environ/NAME`` whose variable is set."""
    if isinstance(value, str):
        return bool(environment_value(value, environ))
    return value is not None and value is not False


def shares_state(settings: StratumSettings, source: str, redis: str | None, workers: int, where: str) -> bool:
    """Whether this router shares its state in Redis (``shared_state.mode``); refuses to
    start when it is required and there is none, and warns when several processes run
    without it."""
    mode = settings.shared_state.mode
    if mode == "required" and redis is None:
        raise SettingsError(
            f"invalid stratum settings in {source}:\n  stratum.shared_state.mode: 'required' needs a Redis in "
            f"{where} (router_settings.redis_host or redis_url, litellm_settings.cache with Redis cache_params, "
            "or the REDIS_HOST environment variable); none is configured")
    shared = mode != "off" and redis is not None
    if shared:
        logger.info("stratum router: state shared with the gateway's other processes in Redis (%s)", redis)
    elif workers > 1:
        logger.warning(
            "stratum router: %d gateway workers run without shared state (%s): each keeps its own in-flight "
            "counts, latency and conversations, so a tier's limits hold per worker; configure Redis for the "
            "gateway (docs/deploy.md)", workers,
            "shared_state.mode: off" if mode == "off" else "no Redis configured")
    return shared
