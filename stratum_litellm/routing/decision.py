"""The routing decision as a value: which tier, the rule that decided, and what it read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Mapping

from ..config import Tier


class Reason(str, Enum):
    """The rule that decided a request's tier (a custom rule adds its name, see
    :attr:`Decision.label`). A ``str`` enum: its value is the metric label."""

    #: The request named a tier's model group itself.
    FORCED = "forced"
    #: It named the smart group while that backend was down or loading.
    FORCED_REDIRECTED = "forced_redirected"
    #: An allowed client picked the tier (header or metadata).
    OVERRIDE = "override"
    #: Scored below the threshold.
    SIMPLE = "simple"
    #: Scored at or above the threshold (a tier's entry score) and that tier had room.
    COMPLEX = "complex"
    #: Its conversation already reached a higher tier than this turn's score.
    AFFINITY = "affinity"
    #: The tier cannot take the request: its context cannot hold it, it takes no images or
    #: audio, or no tools (first among the checks; any rung, the first one too).
    CONTEXT_FIT = "context_fit"
    MODALITY_FIT = "modality_fit"
    TOOLS_FIT = "tools_fit"
    #: No tier can take it: it went to the one with the most room.
    NO_TIER_FITS = "no_tier_fits"
    # Capacity checks that held off the tier a request wanted (the smart tier of two, any
    # rung above the first of a ladder), in the order they run. The names say no tier (the
    # decision's tier and its evidence do); the values keep the "smart_" of the two-tier
    # days because headers, metric labels, dashboards and alerts match on them.
    TIER_UNHEALTHY = "smart_unhealthy"
    TIER_DOWN = "smart_down"
    TIER_LOADING = "smart_loading"
    TIER_QUEUE_FULL = "smart_queue_full"
    TIER_SATURATED = "smart_saturated"
    #: The user already has ``max_in_flight_per_user`` routed requests in flight there.
    TIER_USER_LIMIT = "smart_user_limit"
    VRAM_HEADROOM = "vram_headroom"
    GPU_BUSY = "gpu_busy"
    LATENCY_SLA = "latency_sla"
    #: An overflow tier's budget for the hour or the day is spent.
    BUDGET_SPENT = "budget_spent"
    #: Sent to a tier held off by the SLA as its half-open probe.
    SLA_PROBE = "sla_probe"
    #: A configured or Python rule decided (its name is in :attr:`Decision.rule`).
    RULE = "rule"
    #: The router itself failed; the tier the request gets without the plugin.
    ROUTER_ERROR = "router_error"

    # The plain string, by str's own (C) methods: an Enum's .value is a slow descriptor, and
    # these are formatted on the request path.
    __str__ = str.__str__
    __format__ = str.__format__


@dataclass(frozen=True, slots=True)
class Decision:
    """What the router decided and why: the value logs, metrics, headers and the CLI show."""

    tier: Tier
    model_group: str
    reason: Reason
    score: float | None
    evidence: Mapping[str, Any]
    #: True when this request is the half-open probe of a tier held off by the SLA.
    probe: bool = False
    #: The custom rule's name when ``reason`` is :attr:`Reason.RULE`.
    rule: str | None = None
    #: The tier the request wanted, when it is served elsewhere because that one was
    #: held off (the overflow tier stands in for it, or a rung below).
    wanted: Tier | None = None

    def __post_init__(self) -> None:
        if (self.reason is Reason.RULE) != (self.rule is not None):
            raise ValueError(f"a decision names its rule exactly when its reason is {Reason.RULE.value!r}")

    @property
    def label(self) -> str:
        """The reason as shown to people and metrics: ``rule:<name>`` for a custom rule."""
        return label(self.reason, self.rule)


def label(reason: Reason, rule: str | None = None) -> str:
    """``rule:<name>`` for a custom rule, else the reason's value (metric label, header)."""
    return f"rule:{rule}" if reason is Reason.RULE else str(reason)
