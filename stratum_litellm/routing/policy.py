"""The routing decision: an ordered chain of rules over a request and a signal snapshot.

The tiers form a ladder, cheapest first (``tiers`` in the config, in order); each local
tier above the first has an entry score, and an overflow tier may sit on top. For a
request that names the routed alias, the chain is:

1. the per-request override of an allowed client (``override``);
2. ``first`` custom rules (may pick a tier, or shift the score);
3. complexity: the request wants the highest local tier whose entry score its score
   reaches (or the higher tier its conversation already reached, ``affinity``); the first
   tier takes the rest (``simple``);
4. the capacity checks of :mod:`.checks` on the wanted tier, in order, then the
   ``capacity`` custom rules: the first that blocks holds that tier off; one whose signal
   is unknown abstains, visibly;
5. a wanted tier with room serves it (``complex``, ``affinity`` or ``sla_probe``); one
   held off sends it to the overflow tier if there is one with budget and room, else one
   rung down (checked the same way) until a rung has room; the first tier always has.
   The decision carries the reason the wanted tier was held off, and its evidence lists
   every rung passed over and why;
6. ``last`` custom rules may override the tier.

A request that names a tier's model group directly is ``forced`` and passes untouched.
:meth:`Policy.decide` does no I/O and takes no lock of its own.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from ..config import RulePosition, SettingsError, StratumSettings, Tier
from .ladder import Ladder
from ..scoring import Score, Scorer
from ..scoring.profile import ProfileError, load_profile, settings_folder
from ..scoring.view import RequestView
from ..signals.snapshot import SignalSnapshot
from ..signals.status import Status
from .checks import CHECKS, FIT_REASONS, OVERFLOW_CHECKS, Check, Context, Keys, fit, room_for, rule_check
from .decision import Decision, Reason, label
from .override import override_tier
from .rules import (
    NamedRule,
    RequestMeta,
    RuleFn,
    RuleInput,
    RuleOutcome,
    compile_config_rule,
    load_python_rule,
    run_rule,
)
from .verdict import PASS, Verdict


class Policy:
    """Decides a tier for each request. Build once per settings; cheap to call."""

    def __init__(self, settings: StratumSettings, scorer: Scorer | None = None, source: str = "settings") -> None:
        self.settings = settings
        if scorer is None:
            try:
                profile = load_profile(settings.complexity.profile, settings_folder(source))
            except ProfileError as exc:
                raise SettingsError(f"invalid stratum settings in {source}:\n  complexity.profile: {exc}") from None
        try:
            self.scorer = scorer or Scorer(settings.complexity.weights or None, profile)
        except ValueError as exc:  # the settings cannot know the dimensions; the scorer does
            raise SettingsError(f"invalid stratum settings in {source}:\n  complexity.weights: {exc}") from None
        self.ladder: Ladder = Ladder.of(settings)
        self._rules: dict[RulePosition, list[NamedRule]] = {"first": [], "capacity": [], "last": []}
        #: The capacity checks of each tier above the first, in order: the built-in ones,
        #: then the ``capacity`` rules.
        self._checks: dict[Tier, tuple[Check, ...]] = {
            tier: OVERFLOW_CHECKS if tier == self.ladder.overflow else CHECKS for tier in self.ladder.rank
        }
        self._keys = {tier: Keys(tier) for tier in self.ladder.rank}
        #: Where a request goes, in order, when the tier it wants is held off: the overflow
        #: tier, then each rung below down to (not including) the first, which always has room.
        local, overflow = self.ladder.local, self.ladder.overflow
        self._stand_ins: dict[Tier, tuple[Tier, ...]] = {
            tier: ((overflow,) if overflow is not None else ()) + local[index - 1:0:-1]
            for index, tier in enumerate(local) if index  # the first tier is never held off
        }
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
            check = rule_check(rule, self.ladder.rank)
            self._checks = {tier: checks + (check,) for tier, checks in self._checks.items()}

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
        the request's conversation already reached: a conversation stays at least there,
        capacity permitting, even when this turn alone scores lower."""
        settings = self.settings
        forced = settings.tier_of_group(requested_model)
        if forced is not None:
            return self._forced(forced, requested_model, signals, view, now)
        if requested_model != settings.routed_model:
            return None

        ladder = self.ladder
        score = self.scorer.score(view)
        inp = RuleInput(view=view, meta=meta or RequestMeta(), score=score, signals=signals)
        evidence: dict[str, Any] = {"score": round(score.value, 4), "threshold": settings.complexity.threshold}

        asked, ignored = override_tier(inp.meta, settings.override, ladder.rank)
        if ignored:
            evidence["override"] = ignored
        if asked is not None:
            moved = self._note_fit(asked, signals, view, now, evidence, score.value)
            if moved is not None:
                return moved
            return Decision(asked, settings.model_group(asked), Reason.OVERRIDE, score.value, evidence)

        delta = 0.0
        for rule in self._rules["first"]:
            outcome = run_rule(rule, inp, evidence)
            if outcome is None or not self._known(outcome, rule, evidence):
                continue
            if outcome.tier is not None:
                return self._finish(outcome.tier, Reason.RULE, score.value, evidence, inp, rule=rule.name)
            delta += outcome.score_delta
        value = min(1.0, max(0.0, score.value + delta))
        if delta:
            evidence["score_delta"] = round(delta, 4)
            evidence["adjusted_score"] = round(value, 4)

        wanted = ladder.wanted(value)
        reason = Reason.COMPLEX
        rank = ladder.rank
        if sticky_tier is not None and sticky_tier != wanted and rank.get(sticky_tier, -1) > rank[wanted] \
                and sticky_tier != ladder.overflow:
            wanted, reason = sticky_tier, Reason.AFFINITY
            evidence["affinity"] = sticky_tier
        ctx = Context(settings, signals, signals.taken_at if now is None else now, inp, evidence)
        if wanted == ladder.floor:
            cannot = self._cannot_take(ctx, wanted)
            if cannot is None:
                return self._finish(wanted, Reason.SIMPLE, value, evidence, inp)
            return self._climb(ctx, wanted, cannot, value, inp, {wanted: label(_reason(cannot))})

        verdict = self._capacity(ctx, wanted, "checks")
        if verdict.kind != "block":  # every check passed or abstained, or the SLA's probe
            if verdict.reason is None:
                return self._finish(wanted, reason, value, evidence, inp)
            return self._finish(wanted, verdict.reason, value, evidence, inp, probe=True)
        held, held_reason = verdict, _reason(verdict)
        passed_over = {wanted: label(held_reason, held.rule)}
        if len(ladder.rank) > 2:  # with two tiers the reason alone says it
            evidence["passed_over"] = passed_over
        for tier in self._stand_ins[wanted]:
            verdict = self._capacity(ctx, tier)
            if verdict.kind != "block":
                return self._finish(tier, held_reason, value, evidence, inp, verdict.kind == "probe",
                                    held.rule, wanted)
            passed_over[tier] = label(_reason(verdict), verdict.rule)
        cannot = self._cannot_take(ctx, ladder.floor)
        if cannot is None:
            return self._finish(ladder.floor, held_reason, value, evidence, inp, False, held.rule, wanted)
        passed_over[ladder.floor] = label(_reason(cannot))
        return self._climb(ctx, wanted, cannot if held_reason not in FIT_REASONS else held, value, inp, passed_over)

    def _cannot_take(self, ctx: Context, tier: Tier) -> Verdict | None:
        """Why ``tier`` cannot take the request at all (its ``fit`` check blocks), or None.
        Used for the first tier, which has no capacity checks: its verdict goes into the
        evidence only when its limits are known."""
        ctx.at(tier, self.ladder.rank[tier], self._keys[tier])
        verdict = fit(ctx)
        if verdict is None:
            return None
        ctx.evidence[self._keys[tier].checks] = {"fit": verdict.text}
        return verdict if verdict.kind == "block" else None

    def _climb(self, ctx: Context, start: Tier, cannot: Verdict, value: float, inp: RuleInput,
               passed_over: dict[Tier, str]) -> Decision:
        """The request cannot stay where it was going (``cannot`` says why), and no rung below
        can take it: up the ladder from ``start`` to the first tier that fits and has room;
        else the first that fits, room or not (a queue beats a certain error); else, when no
        tier can take it, the one with the most room (``no_tier_fits``)."""
        ladder, evidence = self.ladder, ctx.evidence
        reason = _reason(cannot)
        evidence["passed_over"] = passed_over
        above = [t for t in ladder.local if ladder.rank[t] > ladder.rank[start]]
        if ladder.overflow is not None and ladder.overflow not in passed_over:
            above.append(ladder.overflow)
        for tier in above:
            verdict = self._capacity(ctx, tier)
            if verdict.kind != "block":
                return self._finish(tier, reason, value, evidence, inp, verdict.kind == "probe", None, start)
            passed_over[tier] = label(_reason(verdict), verdict.rule)
        # Held off for room, not for fit (their ``fit`` check ran first and passed); never
        # an overflow tier past its budget (that is money, not room).
        for tier, why in passed_over.items():
            if why not in _NOT_ROOM:
                evidence["held"] = why
                return self._finish(tier, reason, value, evidence, inp, False, None, start)
        roomiest = max(ladder.local, key=lambda t: room_for(ctx.signals[t].limits))
        if room_for(ctx.signals[roomiest].limits) < 0:
            roomiest = start
        evidence["no_tier_fits"] = label(reason)
        return self._finish(roomiest, Reason.NO_TIER_FITS, value, evidence, inp, False, None, start)

    def _note_fit(self, tier: Tier, signals: SignalSnapshot, view: RequestView, now: float | None,
                  evidence: dict[str, Any], score: float | None = None) -> Decision | None:
        """For a tier the client picked itself: if it cannot take the request, say why, and
        with ``fit.forced: move`` the decision that sends it to the nearest local tier that
        can (up the ladder first; None: keep it where asked)."""
        inp = RuleInput(view=view, meta=RequestMeta(), score=_NO_SCORE, signals=signals)
        ctx = Context(self.settings, signals, signals.taken_at if now is None else now, inp, evidence)
        ctx.at(tier, self.ladder.rank[tier], self._keys[tier])
        verdict = fit(ctx)
        if verdict is None or verdict.kind != "block":
            return None
        evidence["fit"] = f"{tier}: {label(_reason(verdict))}: {verdict.text}"
        if self.settings.fit.forced != "move":
            return None
        order = list(self.ladder.local)  # never the overflow tier: it takes only what its budget allows
        rank = order.index(tier) if tier in order else len(order)
        for other in order[rank + 1:] + order[:rank][::-1]:
            ctx.at(other, self.ladder.rank[other], self._keys[other])
            found = fit(ctx)
            if found is None or found.kind != "block":
                return Decision(other, self.settings.model_group(other), _reason(verdict), score, evidence,
                                wanted=tier)
        return None


    def room(self, tier: Tier, signals: SignalSnapshot, keep_free: int = 0, now: float | None = None) -> str | None:
        """Whether ``tier`` can take one more request the router sends itself (a judged
        sample), with ``keep_free`` places left for users: None if so, else why not (the
        reason of the capacity check that blocks; ``latency_sla`` while over its SLA). A
        check whose signal is unknown abstains, as it does for users' requests."""
        rung = signals[tier]
        if keep_free:
            latency = replace(rung.latency, in_flight=rung.latency.in_flight + keep_free)
            signals = replace(signals, tiers={**signals.tiers, tier: replace(rung, latency=latency)})
        inp = RuleInput(view=RequestView(), meta=RequestMeta(), score=Score(0.0), signals=signals)
        ctx = Context(self.settings, signals, signals.taken_at if now is None else now, inp, {})
        ctx.at(tier, self.ladder.rank[tier], self._keys[tier])
        for check in OVERFLOW_CHECKS if tier == self.ladder.overflow else CHECKS:
            if check.name == "user_share":
                continue
            verdict = check.run(ctx)
            if verdict is not None and verdict.kind == "block":
                return label(_reason(verdict), verdict.rule)
            if verdict is not None and verdict.kind == "probe":
                return str(Reason.LATENCY_SLA)
        return None

    def fallback(self, error: BaseException | str) -> Decision:
        """The decision when the router itself fails: the tier the request would get
        without the plugin."""
        tier = self.ladder.fallback
        return Decision(tier, self.settings.model_group(tier), Reason.ROUTER_ERROR, None, {"error": str(error)[:200]})

    # -- the steps ------------------------------------------------------------------------

    def _forced(self, tier: Tier, requested_model: str, signals: SignalSnapshot, view: RequestView,
                now: float | None) -> Decision:
        """A request naming a tier's model group; one naming a tier above the first may be
        redirected one rung down while its backend cannot serve it. One the tier cannot take
        (``fit``) still goes there, as the client asked, and the evidence says so."""
        settings = self.settings
        evidence: dict[str, Any] = {"requested_model": requested_model}
        moved = self._note_fit(tier, signals, view, now, evidence)
        if moved is not None:
            return moved
        backend = signals[tier].backend
        rank = self.ladder.rank[tier]
        if (rank > 0 and settings.backend_polling.redirect_forced_when_unavailable
                and backend is not None and backend.status in (Status.DOWN, Status.LOADING)):
            below = self.ladder.local[min(rank, len(self.ladder.local)) - 1]
            evidence[f"{tier}_backend"] = f"{backend.status}: {backend.error or 'model not loaded'}"
            return Decision(below, settings.model_group(below), Reason.FORCED_REDIRECTED, None, evidence, wanted=tier)
        return Decision(tier, requested_model, Reason.FORCED, None, evidence)

    def _capacity(self, ctx: Context, tier: Tier, key: str | None = None) -> Verdict:
        """Walk ``tier``'s capacity checks: the first block, else the SLA's probe if it
        asked for one, else pass. Every verdict given is noted in the evidence, under
        ``key`` (``checks`` for the tier the request wanted, ``<tier>_checks`` for the
        rungs tried after it)."""
        keys = self._keys[tier]
        ctx.at(tier, self.ladder.rank[tier], keys)
        noted: dict[str, str] = {}
        ctx.evidence[key or keys.checks] = noted
        result = PASS
        for check in self._checks[tier]:
            verdict = check.run(ctx)
            if verdict is None:
                continue
            noted[check.name] = verdict.text
            if verdict.kind == "block":
                return verdict
            if verdict.kind == "probe":
                result = verdict
        return result

    def _known(self, outcome: RuleOutcome, rule: NamedRule, evidence: dict[str, Any]) -> bool:
        """A rule's tier must be on the ladder (a Python rule may name anything); one that
        is not is ignored, and the evidence says so."""
        if outcome.tier is None or outcome.tier in self.ladder.rank:
            return True
        evidence.setdefault("rule_errors", {})[rule.name] = f"returned tier {str(outcome.tier)[:40]!r}, not one of the tiers"
        return False

    def _finish(self, tier: Tier, reason: Reason, score: float, evidence: dict[str, Any], inp: RuleInput,
                probe: bool = False, rule: str | None = None, wanted: Tier | None = None) -> Decision:
        """The decision, after the ``last`` rules had their say."""
        for last in self._rules["last"]:
            outcome = run_rule(last, inp, evidence)
            if outcome is not None and outcome.tier is not None and outcome.tier != tier \
                    and self._known(outcome, last, evidence):
                evidence["overridden"] = label(reason, rule)
                tier, reason, rule, probe, wanted = outcome.tier, Reason.RULE, last.name, False, None
        return Decision(tier, self.settings.model_group(tier), reason, score, evidence, probe, rule, wanted)


_NOT_ROOM = frozenset(str(reason) for reason in (*FIT_REASONS, Reason.BUDGET_SPENT))
_NO_SCORE = Score(0.0)


def _reason(verdict: Verdict) -> Reason:
    """The reason of a block (every block carries one)."""
    assert verdict.reason is not None
    return verdict.reason
