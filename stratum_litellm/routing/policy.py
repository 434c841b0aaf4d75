"""The routing decision: an ordered chain of rules over a request and a signal snapshot.

For a request that names the routed alias, the chain is:

1. the per-request override of an allowed client (``override``);
2. ``first`` custom rules (may pick a tier, or shift the score);
3. complexity: below the threshold, the fast tier (``simple``), unless the conversation
   already reached the smart tier (``affinity``);
4. the capacity checks of :mod:`.checks`, in order, then the ``capacity`` custom rules:
   the first that blocks sends the request to the fast tier; one whose signal is unknown
   abstains, visibly;
5. otherwise the smart tier (``complex``, or ``sla_probe``);
6. ``last`` custom rules may override the tier.

A request that names a tier's model group directly is ``forced`` and passes untouched.
:meth:`Policy.decide` does no I/O and takes no lock of its own.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..config import RulePosition, SettingsError, StratumSettings, Tier
from ..scoring import Scorer
from ..scoring.view import RequestView
from ..signals.snapshot import SignalSnapshot
from ..signals.status import Status
from .checks import CHECKS, Check, Context, rule_check
from .decision import Decision, Reason, label
from .override import override_tier
from .rules import (
    NamedRule,
    RequestMeta,
    RuleFn,
    RuleInput,
    compile_config_rule,
    load_python_rule,
    run_rule,
)
from .verdict import PASS, Verdict


class Policy:
    """Decides a tier for each request. Build once per settings; cheap to call."""

    def __init__(self, settings: StratumSettings, scorer: Scorer | None = None, source: str = "settings") -> None:
        self.settings = settings
        try:
            self.scorer = scorer or Scorer(settings.complexity.weights or None)
        except ValueError as exc:  # the settings cannot know the dimensions; the scorer does
            raise SettingsError(f"invalid stratum settings in {source}:\n  complexity.weights: {exc}") from None
        self._rules: dict[RulePosition, list[NamedRule]] = {"first": [], "capacity": [], "last": []}
        #: The capacity checks in order: the built-in ones, then the ``capacity`` rules.
        self._checks: tuple[Check, ...] = CHECKS
        for rule in settings.rules:
            self._add(compile_config_rule(rule))
        for spec in settings.python_rules:
            self._add(load_python_rule(spec, source))

    def add_rule(self, fn: RuleFn, position: RulePosition = "first", name: str | None = None) -> None:
        """Join a Python rule to the chain at ``position`` (after the rules already there)."""
        self._add(NamedRule(name or getattr(fn, "__name__", "custom"), position, fn))

    def _add(self, rule: NamedRule) -> None:
        self._rules[rule.position].append(rule)
        if rule.position == "capacity":
            self._checks += (rule_check(rule),)

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
            return self._forced(forced, requested_model, signals)
        if requested_model != settings.routed_model:
            return None

        score = self.scorer.score(view)
        inp = RuleInput(view=view, meta=meta or RequestMeta(), score=score, signals=signals)
        evidence: dict[str, Any] = {"score": round(score.value, 4), "threshold": settings.complexity.threshold}

        asked, ignored = override_tier(inp.meta, settings.override)
        if ignored:
            evidence["override"] = ignored
        if asked is not None:
            return Decision(asked, settings.model_group(asked), Reason.OVERRIDE, score.value, evidence)

        delta = 0.0
        for rule in self._rules["first"]:
            outcome = run_rule(rule, inp, evidence)
            if outcome is None:
                continue
            if outcome.tier is not None:
                return self._finish(outcome.tier, Reason.RULE, score.value, evidence, inp, rule=rule.name)
            delta += outcome.score_delta
        value = min(1.0, max(0.0, score.value + delta))
        if delta:
            evidence["score_delta"] = round(delta, 4)
            evidence["adjusted_score"] = round(value, 4)

        reason = Reason.COMPLEX
        if value < settings.complexity.threshold:
            if sticky_tier != "smart":
                return self._finish("fast", Reason.SIMPLE, value, evidence, inp)
            reason = Reason.AFFINITY
            evidence["affinity"] = "smart"

        verdict = self._capacity(Context(settings, signals, signals.taken_at if now is None else now, inp, evidence))
        if verdict.reason is None:  # every check passed or abstained
            return self._finish("smart", reason, value, evidence, inp)
        tier: Tier = "fast" if verdict.kind == "block" else "smart"  # or the SLA's probe
        return self._finish(tier, verdict.reason, value, evidence, inp, verdict.kind == "probe", verdict.rule)

    def fallback(self, error: BaseException | str) -> Decision:
        """The decision when the router itself fails: the tier the request would get
        without the plugin."""
        tier = self.settings.fallback_tier
        return Decision(tier, self.settings.model_group(tier), Reason.ROUTER_ERROR, None, {"error": str(error)[:200]})

    # -- the steps ------------------------------------------------------------------------

    def _forced(self, tier: Tier, requested_model: str, signals: SignalSnapshot) -> Decision:
        """A request naming a tier's model group; a forced smart request may be redirected
        while its backend cannot serve it."""
        settings = self.settings
        evidence: dict[str, Any] = {"requested_model": requested_model}
        backend = signals[tier].backend
        if (tier == "smart" and settings.backend_polling.redirect_forced_when_unavailable
                and backend is not None and backend.status in (Status.DOWN, Status.LOADING)):
            evidence["smart_backend"] = f"{backend.status}: {backend.error or 'model not loaded'}"
            return Decision("fast", settings.model_group("fast"), Reason.FORCED_REDIRECTED, None, evidence)
        return Decision(tier, requested_model, Reason.FORCED, None, evidence)

    def _capacity(self, ctx: Context) -> Verdict:
        """Walk the capacity checks: the first block, else the SLA's probe if it asked for
        one, else pass. Every verdict given is noted in ``evidence["checks"]``."""
        noted: dict[str, str] = {}
        ctx.evidence["checks"] = noted
        result = PASS
        for check in self._checks:
            verdict = check.run(ctx)
            if verdict is None:
                continue
            noted[check.name] = verdict.text
            if verdict.kind == "block":
                return verdict
            if verdict.kind == "probe":
                result = verdict
        return result

    def _finish(self, tier: Tier, reason: Reason, score: float, evidence: dict[str, Any], inp: RuleInput,
                probe: bool = False, rule: str | None = None) -> Decision:
        """The decision, after the ``last`` rules had their say."""
        for last in self._rules["last"]:
            outcome = run_rule(last, inp, evidence)
            if outcome is not None and outcome.tier is not None and outcome.tier != tier:
                evidence["overridden"] = label(reason, rule)
                tier, reason, rule, probe = outcome.tier, Reason.RULE, last.name, False
        return Decision(tier, self.settings.model_group(tier), reason, score, evidence, probe, rule)
