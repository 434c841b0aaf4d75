"""stratum-litellm: an adaptive two-tier router for self-hosted LLM serving.

The package core (scoring, signals, policy, settings, CLI) never imports LiteLLM, so it
stays cheap to import. The LiteLLM glue lives in :mod:`stratum_litellm.gateway.plugin` and is
reached lazily through the ``proxy_handler`` attribute, which is what the gateway config
names: ``litellm_settings: callbacks: [stratum_litellm.proxy_handler]``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "proxy_handler"]


def __getattr__(name: str) -> Any:
    # Lazy on purpose: importing the plugin imports LiteLLM (seconds, ~200 MB).
    if name in ("proxy_handler", "StratumRouter"):
        from .gateway import plugin

        return getattr(plugin, name)
    raise AttributeError(f"module 'stratum_litellm' has no attribute {name!r}")
