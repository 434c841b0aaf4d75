"""A LiteLLM proxy callback that only does what any router must: rewrite ``gemma4-auto`` to a
model group in the pre-call hook, deciding nothing. ``gateway_overhead.py`` runs a third
gateway with it, so the cost LiteLLM itself charges for a rewritten model (measured apart)
is not mistaken for the router's own."""

from __future__ import annotations

from typing import Any

from litellm.integrations.custom_logger import CustomLogger


class RewriteOnly(CustomLogger):
    async def async_pre_call_hook(self, user_api_key_dict: Any, cache: Any, data: dict, call_type: str) -> dict:
        if data.get("model") == "gemma4-auto":
            data["model"] = "gemma4-fast"
        return data


proxy_handler = RewriteOnly()
