"""What the router writes into a request (its decision, in the request's metadata) and reads
back from LiteLLM's callbacks: the tier it sent the call to, the call's cost and duration."""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from datetime import datetime
from typing import Any

from ..config import Tier
from ..routing.decision import Decision

#: The request metadata key the decision travels under (to the callbacks, headers, logs).
METADATA_KEY = "stratum"


def write(data: MutableMapping[str, Any], decision: Decision, shadow_model: str | None = None) -> None:
    """Put the decision in force, or with ``shadow_model`` only record it (shadow mode)."""
    data["model"] = decision.model_group if shadow_model is None else shadow_model
    metadata = data.get("metadata")
    if not isinstance(metadata, dict):
        metadata = {}
        data["metadata"] = metadata
    record = decision_record(decision)
    record["mode"] = "route" if shadow_model is None else "shadow"
    metadata[METADATA_KEY] = record


def decision_record(decision: Decision) -> dict[str, Any]:
    """The decision as plain data, for request metadata and logs (no prompt text)."""
    return {
        "tier": decision.tier,
        "model_group": decision.model_group,
        "reason": decision.label,
        "score": None if decision.score is None else round(decision.score, 4),
        "probe": decision.probe,
        "evidence": dict(decision.evidence),
    }


def routed_tier(kwargs: Mapping[str, Any], default: Tier) -> Tier:
    """The tier the router sent the call to (its decision travels in the metadata)."""
    params = kwargs.get("litellm_params")
    meta = params.get("metadata") if isinstance(params, Mapping) else None
    record = meta.get(METADATA_KEY) if isinstance(meta, Mapping) else None
    if isinstance(record, Mapping) and record.get("mode") == "route" and isinstance(record.get("tier"), str):
        return record["tier"]
    return default


def cost_of(kwargs: Mapping[str, Any]) -> float:
    """LiteLLM's cost of a call in US dollars (0 when it does not know one)."""
    cost = kwargs.get("response_cost")
    if not isinstance(cost, (int, float)):
        slo = kwargs.get("standard_logging_object")
        cost = slo.get("response_cost") if isinstance(slo, Mapping) else None
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else 0.0


def elapsed_ms(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    if isinstance(start, datetime) and isinstance(end, datetime):
        seconds = (end - start).total_seconds()
    elif isinstance(start, (int, float)) and isinstance(end, (int, float)):
        seconds = float(end) - float(start)
    else:
        return None
    # Clock skew or junk must not poison an average: negative, NaN and infinite are dropped.
    if not 0.0 <= seconds < 86_400.0:
        return None
    return seconds * 1000.0
