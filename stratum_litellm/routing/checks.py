"""The capacity checks: may a request have the tier it wants right now?

Each check reads one of the signals of the tier being checked (a rung of the ladder above
the first) and returns a :class:`~.verdict.Verdict`: pass, block (the request goes to
another rung, with that reason), abstain (the signal is unknown: the check says so and
never invents a value) or, for the latency SLA, probe. :data:`CHECKS` lists them in the
order the policy walks them; the ``capacity`` custom rules follow, each as a check of its
own (:func:`rule_check`). The first block decides.

A check's readings go into the decision's evidence under the tier's name
(``smart_in_flight``, ``smart_latency_ms``...), so rungs checked one after the other keep
their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..config import StratumSettings, Tier, TierSettings
from ..signals.snapshot import SignalSnapshot, TierSignals
from ..signals.status import Status
from .decision import Reason
from .needs import Needs
from .rules import NamedRule, RuleInput, owner, run_rule
from .verdict import PASS, Verdict, abstain, block, probe

_GIB = 1024**3


class Keys:
    """The evidence keys of one tier's readings, made once per tier, not per decision."""

    __slots__ = ("queue", "in_flight", "gpu_free", "gpu_utilisation", "latency", "sla", "checks")

    def __init__(self, tier: Tier) -> None:
        self.queue = f"{tier}_queue"
        self.in_flight = f"{tier}_in_flight"
        self.gpu_free = f"{tier}_gpu_free_gib"
        self.gpu_utilisation = f"{tier}_gpu_utilisation_pct"
        self.latency = f"{tier}_latency_ms"
        self.sla = f"{tier}_sla_ms"
        #: Where the verdicts go when this tier is not the one the request wanted.
        self.checks = f"{tier}_checks"


class Context:
    """What a check reads, and the evidence it adds its readings to. One is built per
    decision and moved from rung to rung (:meth:`at`), so it is a plain slotted class (a
    frozen dataclass builds slower)."""

    __slots__ = ("settings", "signals", "now", "inp", "evidence", "tier", "rung", "tier_settings", "rank",
                 "sla_ms", "keys", "needs")

    def __init__(self, settings: StratumSettings, signals: SignalSnapshot, now: float, inp: RuleInput,
                 evidence: dict[str, Any]) -> None:
        self.settings = settings
        self.signals = signals
        self.now = now
        self.inp = inp
        self.evidence = evidence
        #: What the request needs of a tier (its token estimate made once, if ever asked).
        self.needs = Needs(inp.view)

    def at(self, tier: Tier, rank: int, keys: Keys) -> "Context":
        """Point the checks at ``tier`` (its place on the ladder is ``rank``)."""
        self.tier = tier
        #: The signals of the tier being checked, which every check reads.
        self.rung: TierSignals = self.signals[tier]
        self.tier_settings = settings = self.settings.tiers[tier]
        self.rank = rank
        self.sla_ms = settings.sla_ms if settings.sla_ms is not None else self.settings.latency.sla_ms
        self.keys = keys
        return self


@dataclass(frozen=True, slots=True)
class Check:
    #: Its key in the decision's ``evidence["checks"]``.
    name: str
    #: The verdict, or None when the check stays out of it and leaves no trace (a custom
    #: rule that does not hold the smart tier off).
    run: Callable[[Context], "Verdict | None"]
    #: The reasons its verdicts can give the decision.
    reasons: tuple[Reason, ...]


#: The reasons a tier cannot take a request at all, however idle it is.
FIT_REASONS = frozenset({Reason.CONTEXT_FIT, Reason.MODALITY_FIT, Reason.TOOLS_FIT})


def fit(ctx: Context) -> Verdict | None:
    """The tier can take the request: the tools, images and audio it has, the tokens its
    context holds. A limit nobody knows never holds a request off; a tier with none known
    leaves no trace."""
    limits = ctx.rung.limits
    if not limits.known:
        return None
    needs, sources = ctx.needs, limits.sources
    if needs.tools and limits.tools is False:
        return block(Reason.TOOLS_FIT, f"takes no tools ({sources.get('tools', 'limits')})")
    if needs.vision and limits.vision is False:
        return block(Reason.MODALITY_FIT, f"takes no images ({sources.get('vision', 'limits')})")
    if needs.audio and limits.audio is False:
        return block(Reason.MODALITY_FIT, f"takes no audio ({sources.get('audio', 'limits')})")
    if limits.input_tokens is None and limits.context_tokens is None:
        return PASS
    tokens, asked = needs.input_tokens, needs.output_tokens
    ctx.evidence["input_tokens"] = tokens
    if limits.input_tokens is not None and tokens > limits.input_tokens:
        return block(Reason.CONTEXT_FIT, f"about {tokens} input tokens > {limits.input_tokens} "
                                         f"({sources.get('input_tokens', 'limits')})")
    if limits.context_tokens is not None and tokens + asked > limits.context_tokens:
        return block(Reason.CONTEXT_FIT, f"about {tokens} input + {asked} asked tokens > {limits.context_tokens} "
                                         f"({sources.get('context_tokens', 'limits')})")
    return PASS


def room_for(limits: Any) -> int:
    """How many tokens a tier can take, for a request no tier fits (-1: unknown)."""
    known = [n for n in (limits.context_tokens, limits.input_tokens) if n is not None]
    return max(known) if known else -1


def health(ctx: Context) -> Verdict:
    """Failures in a row put the tier in cooldown."""
    latency = ctx.rung.latency
    if latency.unhealthy_until > ctx.now:
        return block(Reason.TIER_UNHEALTHY, f"{latency.consecutive_failures} failures in a row")
    return PASS


def backend(ctx: Context) -> Verdict:
    """The backend's own view: down, model not loaded, or its queue or cache full."""
    load = ctx.rung.backend
    if load is None:
        return abstain("no backend load signals configured")
    if load.status == Status.DOWN:
        return block(Reason.TIER_DOWN, f"down ({load.error or 'unreachable'})")
    if load.status == Status.LOADING or load.model_loaded is False:
        return block(Reason.TIER_LOADING, f"model not loaded ({load.error or load.status})")
    if load.status != Status.OK:
        return abstain(f"{load.status} ({load.error or 'no reading'})")
    ctx.evidence[ctx.keys.queue] = {"running": load.requests_running, "waiting": load.requests_waiting,
                                   "slots": load.slots_total, "idle_slots": load.slots_idle,
                                   "kv_cache": load.kv_cache_usage}
    if load.saturated:
        return block(Reason.TIER_QUEUE_FULL, "queue or cache saturated")
    return PASS


def in_flight(ctx: Context) -> Verdict:
    """A burst spills to another rung instead of queueing on this one."""
    limit = in_flight_limit(ctx.tier_settings, ctx.rung)
    count = ctx.rung.latency.in_flight
    ctx.evidence[ctx.keys.in_flight] = count
    if limit is None:
        return abstain("no limit set and no slot count known")
    if count >= limit:
        return block(Reason.TIER_SATURATED, f"{count} >= {limit}")
    return PASS


def in_flight_limit(tier_settings: TierSettings, rung: TierSignals) -> int | None:
    """How many requests the tier may have in flight: ``max_in_flight``, else the slots
    its backend reports, else no limit."""
    limit = tier_settings.max_in_flight
    load = rung.backend
    if limit is None and load is not None and load.status == Status.OK and load.slots_total:
        limit = load.slots_total
    return limit


def user_share(ctx: Context) -> Verdict | None:
    """One user's share of the tier: at most ``max_in_flight_per_user`` in flight."""
    limit = ctx.tier_settings.max_in_flight_per_user
    if limit is None:
        return None  # not configured: no trace in the evidence
    who = owner(ctx.inp.meta, ctx.settings.fairness.by)
    if who is None:
        return abstain(f"no {ctx.settings.fairness.by} to count the request against")
    held = ctx.signals.held(ctx.tier, who)
    if held >= limit:
        return block(Reason.TIER_USER_LIMIT, f"this user has {held} >= {limit} in flight")
    return PASS


def vram(ctx: Context) -> Verdict:
    """Free memory on the tier's GPU, above ``gpu.min_free_gib``."""
    gpu = ctx.rung.gpu
    if gpu is None:
        return _gpu_unknown(ctx)
    free_gib = gpu.memory_free_bytes / _GIB
    # The whole reading goes in the evidence, even when this check already blocks.
    ctx.evidence[ctx.keys.gpu_free] = round(free_gib, 3)
    ctx.evidence[ctx.keys.gpu_utilisation] = gpu.utilization_pct
    minimum = ctx.settings.gpu.min_free_gib
    if free_gib < minimum:
        return block(Reason.VRAM_HEADROOM, f"{free_gib:.2f} GiB free < {minimum} GiB")
    return PASS


def gpu_utilisation(ctx: Context) -> Verdict:
    """The GPU's utilisation circuit (it trips and resets at different levels)."""
    gpu = ctx.rung.gpu
    if gpu is None:
        return _gpu_unknown(ctx)
    if ctx.rung.gpu_busy:
        return block(Reason.GPU_BUSY, f"circuit open at {gpu.utilization_pct:.0f}%")
    return PASS


def latency_sla(ctx: Context) -> Verdict:
    """The tier's latency average within its SLA (``sla_ms``, else ``latency.sla_ms``),
    half-open: a tier above it gets one probe now and then, since a tier held off for good
    never makes the sample that would show it is fast again."""
    latency, sla, limit = ctx.rung.latency, ctx.settings.latency, ctx.sla_ms
    measured = latency.measure_ms(sla.measure)
    if measured is None:
        return abstain("no latency sample yet")
    ctx.evidence[ctx.keys.latency] = round(measured, 1)
    ctx.evidence[ctx.keys.sla] = limit
    if measured <= limit:
        return PASS
    since = ctx.now - max(latency.last_sample_at or 0.0, latency.last_probe_at or 0.0)
    if not latency.probe_in_flight and since >= sla.probe_interval_s:
        return probe(f"{measured:.0f} ms > {limit:.0f} ms, no sample for {since:.0f} s")
    return block(Reason.LATENCY_SLA, f"{measured:.0f} ms > {limit:.0f} ms")


def budget(ctx: Context) -> Verdict:
    """An overflow tier's budget for the rolling hour and day (requests, spend)."""
    left = ctx.rung.budget
    if left is None:
        return PASS
    if left.spent is not None:
        return block(Reason.BUDGET_SPENT, left.spent)
    return PASS


def _gpu_unknown(ctx: Context) -> Verdict:
    return abstain(f"GPU {ctx.signals.gpu_status} ({ctx.signals.gpu_error or 'no reading'})")


#: The built-in checks, in the order they run (the README's decision table lists them so):
#: ``fit`` first (a tier that cannot take the request at all), then the capacity checks.
#: An overflow tier runs :data:`OVERFLOW_CHECKS` instead: its budget, and no GPU checks.
CHECKS: tuple[Check, ...] = (
    Check("fit", fit, (Reason.CONTEXT_FIT, Reason.MODALITY_FIT, Reason.TOOLS_FIT)),
    Check("health", health, (Reason.TIER_UNHEALTHY,)),
    Check("backend", backend, (Reason.TIER_DOWN, Reason.TIER_LOADING, Reason.TIER_QUEUE_FULL)),
    Check("in_flight", in_flight, (Reason.TIER_SATURATED,)),
    Check("user_share", user_share, (Reason.TIER_USER_LIMIT,)),
    Check("vram", vram, (Reason.VRAM_HEADROOM,)),
    Check("gpu_utilisation", gpu_utilisation, (Reason.GPU_BUSY,)),
    Check("latency_sla", latency_sla, (Reason.LATENCY_SLA, Reason.SLA_PROBE)),
)
_GPU_CHECKS = ("vram", "gpu_utilisation")
OVERFLOW_CHECKS: tuple[Check, ...] = (
    (Check("budget", budget, (Reason.BUDGET_SPENT,)),) + tuple(c for c in CHECKS if c.name not in _GPU_CHECKS)
)


def rule_check(rule: NamedRule, rank: dict[Tier, int]) -> Check:
    """A ``capacity`` custom rule as a check: returning a tier holds off every tier above
    it (the first tier, in a two-tier ladder, holds the second off)."""

    def run(ctx: Context) -> Verdict | None:
        outcome = run_rule(rule, ctx.inp, ctx.evidence)
        if outcome is not None and outcome.tier is not None and rank.get(outcome.tier, ctx.rank) < ctx.rank:
            return block(Reason.RULE, rule=rule.name)
        return None

    return Check(f"rule:{rule.name}", run, (Reason.RULE,))
