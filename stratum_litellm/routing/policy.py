"""The routing decision: an ordered chain of rules over a request and a signal snapshot.

For a request that names the routed alias, the chain is:

1. ``first`` custom rules (may pick a tier, or shift the score);
2. complexity: below the threshold, the fast tier (``simple``);
3. capacity, only for a complex request: smart tier unhealthy (failure streak), its
   backend down, loading or saturated (its own load signals), too many in flight, VRAM
   headroom, GPU utilisation circuit, latency SLA (with a half-open probe so a slow tier
   comes back), then ``capacity`` custom rules. The first rule that says no
   sends the request to the fast tier; a rule whose signal is unknown abstains, visibly;
4. otherwise the smart tier (``complex``);
5. ``last`` custom rules may override the tier.

A request that names a tier's model group directly is ``forced`` and passes untouched.
:meth:`Policy.decide` does no I/O and takes no lock of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from ..scoring.view import RequestView
from .rules import (
    NamedRule,
    RequestMeta,
    RuleFn,
    RuleInput,
    RuleOutcome,
    compile_config_rule,
    load_python_rule,
    override_tier,
)
from ..scoring.scorer import Scorer
from ..config import RulePosition, StratumSettings, Tier
from ..signals.snapshot import SignalSnapshot

_GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Decision:
    """What the router decided and why: the value logs, metrics, headers and the CLI show."""

    tier: Tier
    model_group: str
    #: The rule that decided: forced, forced_redirected, override, simple, complex, affinity,
    #: smart_unhealthy, smart_down, smart_loading, smart_queue_full, smart_saturated,
    #: vram_headroom, gpu_busy, latency_sla, sla_probe, rule:<name>, router_error.
    reason: str
    score: float | None
    evidence: Mapping[str, Any]
    #: True when this request is the half-open probe of a tier held off by the SLA.
    probe: bool = False


class Policy:
    """Decides a tier for each request. Build once per settings; cheap to call."""

    def __init__(self, settings: StratumSettings, scorer: Scorer | None = None, source: str = "settings") -> None:
        self.settings = settings
        self.scorer = scorer or Scorer(settings.complexity.weights or None)
        self._rules: dict[RulePosition, list[NamedRule]] = {"first": [], "capacity": [], "last": []}
        for rule in settings.rules:
            self._add(compile_config_rule(rule))
        for spec in settings.python_rules:
            self._add(load_python_rule(spec, source))

    def add_rule(self, fn: RuleFn, position: RulePosition = "first", name: str | None = None) -> None:
        """Join a Python rule to the chain at ``position`` (after the rules already there)."""
        self._add(NamedRule(name or getattr(fn, "__name__", "custom"), position, fn))

    def _add(self, rule: NamedRule) -> None:
        self._rules[rule.position].append(rule)

    @property
    def rules(self) -> Mapping[RulePosition, tuple[NamedRule, ...]]:
        return {position: tuple(rules) for position, rules in self._rules.items()}

    # -- the decision -------------------------------------------------------------------

    def decide(
        self,
        view: RequestView,
        requested_model: str,
        signals: SignalSnapshot,
        meta: RequestMeta | None = None,
        now: float | None = None,
        sticky_tier: Tier | None = None,
    ) -> Decision | None:
        """The decision for one request, or None when the request is not the router's
        (neither the routed alias nor a tier's model group). ``sticky_tier`` is the tier
        the request's conversation already reached: a conversation on the smart tier
        stays there, capacity permitting, even when this turn alone is simple."""
        settings = self.settings
        forced = settings.tier_of_group(requested_model)
        if forced is not None:
            evidence: dict[str, Any] = {"requested_model": requested_model}
            backend = signals[forced].backend
            if (forced == "smart" and settings.backend_polling.redirect_forced_when_unavailable
                    and backend is not None and backend.status in ("down", "loading")):
                evidence["smart_backend"] = f"{backend.status}: {backend.error or 'model not loaded'}"
                return Decision("fast", settings.model_group("fast"), "forced_redirected", None, evidence)
            return Decision(forced, requested_model, "forced", None, evidence)
        if requested_model != settings.routed_model:
            return None

        score = self.scorer.score(view)
        meta = meta or RequestMeta()
        inp = RuleInput(view=view, meta=meta, score=score, signals=signals)
        evidence: dict[str, Any] = {"score": round(score.value, 4), "threshold": settings.complexity.threshold}

        asked, ignored = override_tier(meta, settings.override)
        if ignored:
            evidence["override"] = ignored
        if asked is not None:
            return Decision(asked, settings.model_group(asked), "override", score.value, evidence)

        delta = 0.0
        for rule in self._rules["first"]:
            outcome = _run(rule, inp, evidence)
            if outcome is None:
                continue
            if outcome.tier is not None:
                return self._finish(outcome.tier, f"rule:{rule.name}", score.value, evidence, inp)
            delta += outcome.score_delta
        value = min(1.0, max(0.0, score.value + delta))
        if delta:
            evidence["score_delta"] = round(delta, 4)
            evidence["adjusted_score"] = round(value, 4)

        reason = "complex"
        if value < settings.complexity.threshold:
            if sticky_tier != "smart":
                return self._finish("fast", "simple", value, evidence, inp)
            reason = "affinity"
            evidence["affinity"] = "smart"

        held_off, probe = self._capacity(signals, inp, evidence, now if now is not None else signals.taken_at)
        if held_off is not None:
            return self._finish("fast", held_off, value, evidence, inp)
        return self._finish("smart", "sla_probe" if probe else reason, value, evidence, inp, probe)

    def fallback(self, error: BaseException | str) -> Decision:
        """The decision when the router itself fails: the tier the request would get
        without the plugin."""
        tier = self.settings.fallback_tier
        return Decision(tier, self.settings.model_group(tier), "router_error", None, {"error": str(error)[:200]})

    # -- internals ------------------------------------------------------------------------

    def _finish(
        self, tier: Tier, reason: str, score: float, evidence: dict[str, Any], inp: RuleInput, probe: bool = False
    ) -> Decision:
        for rule in self._rules["last"]:
            outcome = _run(rule, inp, evidence)
            if outcome is not None and outcome.tier is not None and outcome.tier != tier:
                evidence["overridden"] = reason
                tier, reason, probe = outcome.tier, f"rule:{rule.name}", False
        return Decision(tier, self.settings.model_group(tier), reason, score, evidence, probe)

    def _capacity(
        self, signals: SignalSnapshot, inp: RuleInput, evidence: dict[str, Any], now: float
    ) -> tuple[str | None, bool]:
        """The first capacity rule that holds the smart tier off (or None), and whether
        the request goes as an SLA probe."""
        settings = self.settings
        smart = signals["smart"]
        lat = smart.latency
        checks: dict[str, str] = {}
        evidence["checks"] = checks

        # Health: failures in a row put the tier in cooldown.
        if lat.unhealthy_until > now:
            checks["health"] = f"block: {lat.consecutive_failures} failures in a row"
            return "smart_unhealthy", False
        checks["health"] = "pass"

        # The backend's own view: down, model not loaded, or its queue / cache full.
        backend = smart.backend
        if backend is None:
            checks["backend"] = "abstain: no backend load signals configured"
        elif backend.status == "down":
            checks["backend"] = f"block: down ({backend.error or 'unreachable'})"
            return "smart_down", False
        elif backend.status == "loading" or backend.model_loaded is False:
            checks["backend"] = f"block: model not loaded ({backend.error or backend.status})"
            return "smart_loading", False
        elif backend.status != "ok":
            checks["backend"] = f"abstain: {backend.status} ({backend.error or 'no reading'})"
        else:
            evidence["smart_queue"] = {"running": backend.requests_running, "waiting": backend.requests_waiting,
                                       "slots": backend.slots_total, "idle_slots": backend.slots_idle,
                                       "kv_cache": backend.kv_cache_usage}
            if backend.saturated:
                checks["backend"] = "block: queue or cache saturated"
                return "smart_queue_full", False
            checks["backend"] = "pass"

        # In flight: a burst spills to the fast tier instead of queueing on the smart one.
        # Without a configured limit, the backend's slot count is the limit when known.
        limit = settings.tiers["smart"].max_in_flight
        if limit is None and backend is not None and backend.status == "ok" and backend.slots_total:
            limit = backend.slots_total
        evidence["smart_in_flight"] = lat.in_flight
        if limit is None:
            checks["in_flight"] = "abstain: no limit set and no slot count known"
        elif lat.in_flight >= limit:
            checks["in_flight"] = f"block: {lat.in_flight} >= {limit}"
            return "smart_saturated", False
        else:
            checks["in_flight"] = "pass"

        # VRAM headroom on the smart tier's GPU.
        gpu = smart.gpu
        if gpu is None:
            checks["vram"] = f"abstain: GPU {signals.gpu_status} ({signals.gpu_error or 'no reading'})"
            checks["gpu_utilisation"] = checks["vram"]
        else:
            free_gib = gpu.memory_free_bytes / _GIB
            evidence["smart_gpu_free_gib"] = round(free_gib, 3)
            evidence["smart_gpu_utilisation_pct"] = gpu.utilization_pct
            if free_gib < settings.gpu.min_free_gib:
                checks["vram"] = f"block: {free_gib:.2f} GiB free < {settings.gpu.min_free_gib} GiB"
                return "vram_headroom", False
            checks["vram"] = "pass"
            if smart.gpu_busy:
                checks["gpu_utilisation"] = f"block: circuit open at {gpu.utilization_pct:.0f}%"
                return "gpu_busy", False
            checks["gpu_utilisation"] = "pass"

        # Latency SLA, half-open: a tier above the SLA gets one probe now and then, so it
        # can show it is fast again (the seed router locked it out for good).
        lsettings = settings.latency
        measured = lat.measure_ms(lsettings.measure)
        probe = False
        if measured is None:
            checks["latency_sla"] = "abstain: no latency sample yet"
        else:
            evidence["smart_latency_ms"] = round(measured, 1)
            evidence["sla_ms"] = lsettings.sla_ms
            if measured <= lsettings.sla_ms:
                checks["latency_sla"] = "pass"
            else:
                since = now - max(lat.last_sample_at or 0.0, lat.last_probe_at or 0.0)
                if not lat.probe_in_flight and since >= lsettings.probe_interval_s:
                    checks["latency_sla"] = f"probe: {measured:.0f} ms > {lsettings.sla_ms:.0f} ms, no sample for {since:.0f} s"
                    probe = True
                else:
                    checks["latency_sla"] = f"block: {measured:.0f} ms > {lsettings.sla_ms:.0f} ms"
                    return "latency_sla", False

        for rule in self._rules["capacity"]:
            outcome = _run(rule, inp, evidence)
            if outcome is not None and outcome.tier == "fast":
                checks[f"rule:{rule.name}"] = "block"
                return f"rule:{rule.name}", False
        return None, probe


def _run(rule: NamedRule, inp: RuleInput, evidence: dict[str, Any]) -> RuleOutcome | None:
    """Run a custom rule; one that raises abstains and says so in the evidence."""
    try:
        outcome = rule.fn(inp)
    except Exception as exc:  # a custom rule must not take routing down
        evidence.setdefault("rule_errors", {})[rule.name] = f"{type(exc).__name__}: {exc}"[:200]
        return None
    if outcome is not None and not isinstance(outcome, RuleOutcome):
        evidence.setdefault("rule_errors", {})[rule.name] = f"returned {type(outcome).__name__}, not RuleOutcome"
        return None
    if outcome is not None:
        evidence.setdefault("rules_matched", []).append(rule.name)
    return outcome


def iter_reasons() -> Iterable[str]:
    """The built-in reasons (custom rules add ``rule:<name>``)."""
    return (
        "forced",
        "forced_redirected",
        "override",
        "simple",
        "complex",
        "affinity",
        "smart_unhealthy",
        "smart_down",
        "smart_loading",
        "smart_queue_full",
        "smart_saturated",
        "vram_headroom",
        "gpu_busy",
        "latency_sla",
        "sla_probe",
        "router_error",
    )
