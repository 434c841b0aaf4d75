"""The capacity checks: may a complex request have the smart tier right now?

Each check reads one of the smart tier's signals and returns a :class:`~.verdict.Verdict`:
pass, block (the request goes to the fast tier, with that reason), abstain (the signal is
unknown: the check says so and never invents a value) or, for the latency SLA, probe.
:data:`CHECKS` lists them in the order the policy walks them; the ``capacity`` custom rules
follow, each as a check of its own (:func:`rule_check`). The first block decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..config import StratumSettings
from ..signals.snapshot import SignalSnapshot, TierSignals
from ..signals.status import Status
from .decision import Reason
from .rules import NamedRule, RuleInput, run_rule
from .verdict import PASS, Verdict, abstain, block, probe

_GIB = 1024**3


class Context:
    """What a check reads, and the evidence it adds its readings to. One is built per
    decision, so it is a plain slotted class (a frozen dataclass builds slower)."""

    __slots__ = ("settings", "signals", "smart", "now", "inp", "evidence")

    def __init__(self, settings: StratumSettings, signals: SignalSnapshot, now: float, inp: RuleInput,
                 evidence: dict[str, Any]) -> None:
        self.settings = settings
        self.signals = signals
        #: The smart tier's signals, which every check reads.
        self.smart: TierSignals = signals["smart"]
        self.now = now
        self.inp = inp
        self.evidence = evidence


@dataclass(frozen=True, slots=True)
class Check:
    #: Its key in the decision's ``evidence["checks"]``.
    name: str
    #: The verdict, or None when the check stays out of it and leaves no trace (a custom
    #: rule that does not hold the smart tier off).
    run: Callable[[Context], "Verdict | None"]
    #: The reasons its verdicts can give the decision.
    reasons: tuple[Reason, ...]


def health(ctx: Context) -> Verdict:
    """Failures in a row put the tier in cooldown."""
    latency = ctx.smart.latency
    if latency.unhealthy_until > ctx.now:
        return block(Reason.SMART_UNHEALTHY, f"{latency.consecutive_failures} failures in a row")
    return PASS


def backend(ctx: Context) -> Verdict:
    """The backend's own view: down, model not loaded, or its queue or cache full."""
    load = ctx.smart.backend
    if load is None:
        return abstain("no backend load signals configured")
    if load.status == Status.DOWN:
        return block(Reason.SMART_DOWN, f"down ({load.error or 'unreachable'})")
    if load.status == Status.LOADING or load.model_loaded is False:
        return block(Reason.SMART_LOADING, f"model not loaded ({load.error or load.status})")
    if load.status != Status.OK:
        return abstain(f"{load.status} ({load.error or 'no reading'})")
    ctx.evidence["smart_queue"] = {"running": load.requests_running, "waiting": load.requests_waiting,
                                   "slots": load.slots_total, "idle_slots": load.slots_idle,
                                   "kv_cache": load.kv_cache_usage}
    if load.saturated:
        return block(Reason.SMART_QUEUE_FULL, "queue or cache saturated")
    return PASS


def in_flight(ctx: Context) -> Verdict:
    """A burst spills to the fast tier instead of queueing on the smart one."""
    limit = ctx.settings.tiers["smart"].max_in_flight
    load = ctx.smart.backend
    if limit is None and load is not None and load.status == Status.OK and load.slots_total:
        limit = load.slots_total  # without a configured limit, the backend's slots are one
    count = ctx.smart.latency.in_flight
    ctx.evidence["smart_in_flight"] = count
    if limit is None:
        return abstain("no limit set and no slot count known")
    if count >= limit:
        return block(Reason.SMART_SATURATED, f"{count} >= {limit}")
    return PASS


def vram(ctx: Context) -> Verdict:
    """Free memory on the smart tier's GPU, above ``gpu.min_free_gib``."""
    gpu = ctx.smart.gpu
    if gpu is None:
        return _gpu_unknown(ctx)
    free_gib = gpu.memory_free_bytes / _GIB
    # The whole reading goes in the evidence, even when this check already blocks.
    ctx.evidence["smart_gpu_free_gib"] = round(free_gib, 3)
    ctx.evidence["smart_gpu_utilisation_pct"] = gpu.utilization_pct
    minimum = ctx.settings.gpu.min_free_gib
    if free_gib < minimum:
        return block(Reason.VRAM_HEADROOM, f"{free_gib:.2f} GiB free < {minimum} GiB")
    return PASS


def gpu_utilisation(ctx: Context) -> Verdict:
    """The GPU's utilisation circuit (it trips and resets at different levels)."""
    gpu = ctx.smart.gpu
    if gpu is None:
        return _gpu_unknown(ctx)
    if ctx.smart.gpu_busy:
        return block(Reason.GPU_BUSY, f"circuit open at {gpu.utilization_pct:.0f}%")
    return PASS


def latency_sla(ctx: Context) -> Verdict:
    """The tier's latency average within ``latency.sla_ms``, half-open: a tier above it gets
    one probe now and then, since a tier held off for good never makes the sample that
    would show it is fast again."""
    latency, sla = ctx.smart.latency, ctx.settings.latency
    measured = latency.measure_ms(sla.measure)
    if measured is None:
        return abstain("no latency sample yet")
    ctx.evidence["smart_latency_ms"] = round(measured, 1)
    ctx.evidence["sla_ms"] = sla.sla_ms
    if measured <= sla.sla_ms:
        return PASS
    since = ctx.now - max(latency.last_sample_at or 0.0, latency.last_probe_at or 0.0)
    if not latency.probe_in_flight and since >= sla.probe_interval_s:
        return probe(f"{measured:.0f} ms > {sla.sla_ms:.0f} ms, no sample for {since:.0f} s")
    return block(Reason.LATENCY_SLA, f"{measured:.0f} ms > {sla.sla_ms:.0f} ms")


def _gpu_unknown(ctx: Context) -> Verdict:
    return abstain(f"GPU {ctx.signals.gpu_status} ({ctx.signals.gpu_error or 'no reading'})")


#: The built-in checks, in the order they run (the README's decision table lists them so).
CHECKS: tuple[Check, ...] = (
    Check("health", health, (Reason.SMART_UNHEALTHY,)),
    Check("backend", backend, (Reason.SMART_DOWN, Reason.SMART_LOADING, Reason.SMART_QUEUE_FULL)),
    Check("in_flight", in_flight, (Reason.SMART_SATURATED,)),
    Check("vram", vram, (Reason.VRAM_HEADROOM,)),
    Check("gpu_utilisation", gpu_utilisation, (Reason.GPU_BUSY,)),
    Check("latency_sla", latency_sla, (Reason.LATENCY_SLA, Reason.SLA_PROBE)),
)


def rule_check(rule: NamedRule) -> Check:
    """A ``capacity`` custom rule as a check: returning the fast tier blocks."""

    def run(ctx: Context) -> Verdict | None:
        outcome = run_rule(rule, ctx.inp, ctx.evidence)
        if outcome is not None and outcome.tier == "fast":
            return block(Reason.RULE, rule=rule.name)
        return None

    return Check(f"rule:{rule.name}", run, (Reason.RULE,))
