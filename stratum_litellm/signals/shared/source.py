"""Whether a gateway config gives LiteLLM a Redis, and where (plain data, no LiteLLM).

The router uses the Redis LiteLLM itself is configured with, so the operator keeps one
connection setting. This reads the same places LiteLLM does, to decide at start-up whether
``shared_state: auto`` shares and whether ``required`` may start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def redis_source(document: Any, environ: Mapping[str, str]) -> str | None:
    """Where the gateway's Redis is configured (for the log and ``stratum check``), or None."""
    config = document if isinstance(document, Mapping) else {}
    router = config.get("router_settings")
    if isinstance(router, Mapping):
        if router.get("redis_url"):
            return "router_settings.redis_url"
        if router.get("redis_host"):
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
