"""The router as the gateway sees it: route a request body, learn from its outcome.

Everything here works on plain dictionaries (the request body, the callback keyword
arguments), so it runs and is tested without LiteLLM; :mod:`.plugin` only adapts LiteLLM's
hook signatures to it. Routing fails open: any internal error sends the request to the
tier it would get without the plugin, and never reaches the client.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from dataclasses import replace
from typing import Any, Callable, Mapping, MutableMapping, Sequence

from ..config import StratumSettings, Tier
from ..config.model_list import fill_backends
from ..routing.affinity import AffinityStore, continues, conversation_key
from ..routing.decision import Decision, Reason
from ..routing.policy import Policy
from ..routing.rules import RequestMeta, owner
from ..scoring.profile import resolve, settings_folder
from ..scoring.view import RequestView
from ..routing.checks import in_flight_limit
from ..signals.shared import Claim, Claimed, Connect, SharedState
from ..signals.snapshot import SignalSnapshot, Signals
from ..signals.limits import configured
from . import metrics
from ..learning.sampler import is_sample
from .learning import LearningLoop
from .outcome import Outcome, outcome
from .record import cost_of, elapsed_ms, routed_tier, write
from .reload import ConfigWatcher, keep_start_values
from .stats import RouterStats

logger = logging.getLogger("stratum_litellm")


class RouterEngine:
    """One router: settings, signals and policy, and the request/callback entry points."""

    def __init__(self, settings: StratumSettings, signals: Signals | None = None, policy: Policy | None = None,
                 source: str = "settings", model_list: Sequence[Any] | None = None) -> None:
        self.source = source
        #: The gateway's deployments: a tier without ``backend:`` is read at its group's
        #: api_base, in every reload as in :meth:`polling`.
        self.model_list = model_list
        self.signals = signals or Signals(settings)
        # The policy carries its settings: swapping this one reference is a reload.
        self.policy = policy or Policy(settings, source=source)
        self.affinity = AffinityStore(settings.affinity.ttl_s, settings.affinity.max_conversations,
                                      rank=self.policy.ladder.rank)
        self._logged_errors: set[str] = set()
        self.error_count = 0
        self._watcher: ConfigWatcher | None = None
        #: Judged samples and decisions kept for users' ratings (``learning``).
        self.learning = LearningLoop(self)
        self.learning.configure(settings)

    @classmethod
    def polling(cls, settings: StratumSettings, source: str, model_list: Sequence[Any] | None = None,
                shared: Connect | None = None) -> "RouterEngine":
        """An engine whose signals poll the GPU and each tier's backend, read from
        ``backend:`` or else from the group's api_base in ``model_list``; with ``shared``
        (how to reach the gateway's Redis), its state is shared with the other processes."""
        settings, notes = fill_backends(settings, model_list)
        for tier, note in notes.items():
            logger.info("stratum router: tier %s backend signals: %s", tier, note)
        limits = configured(settings, model_list)  # each tier's limits: settings, then model_info
        engine = cls(settings, Signals.polling(settings, limits), source=source, model_list=model_list)
        if shared is not None:
            engine.signals.share(SharedState(settings, shared, report=_count_shared_error))
        return engine

    def start(self) -> None:
        """Start the background work (idempotent; cheap after the first call): the pollers,
        and the shared state's tick on the running event loop."""
        self.signals.start()
        shared = self.signals.shared
        if shared is not None:
            shared.start()

    @property
    def settings(self) -> StratumSettings:
        return self.policy.settings

    def apply_settings(self, settings: StratumSettings) -> None:
        """Put new settings in force without dropping a request; raises (and changes
        nothing) when they cannot be built, e.g. a python rule that does not import."""
        settings, _ = fill_backends(settings, self.model_list)
        policy = Policy(settings, source=self.source)  # may raise: nothing changed yet
        self.learning.configure(settings)  # may raise (a store that cannot be opened): nothing changed yet
        self.signals.reconfigure(settings, configured(settings, self.model_list))  # all or nothing
        if self.signals.shared is not None:
            self.signals.shared.configure(settings)
        self.affinity.configure(settings.affinity.ttl_s, settings.affinity.max_conversations, policy.ladder.rank)
        self.policy = policy
        metrics.start_at_zero(settings)
        self._follow_reload_settings()

    def _follow_reload_settings(self) -> None:
        watcher, reload = self._watcher, self.settings.reload
        if watcher is None:
            return
        if not reload.enabled:
            logger.info("stratum: reload.enabled is now false; no longer watching %s", watcher.path)
            self._watcher = None
            watcher.stop()
        elif watcher.interval_s != reload.interval_s:
            watcher.configure(reload.interval_s)

    def watch(self, path: str) -> None:
        """Reload the settings from ``path`` when it changes (settings ``reload``).

        An edit that sets ``reload.enabled: false`` stops the watching (a restart starts it
        again); one that changes ``reload.interval_s`` takes effect from the next look."""
        reload = self.settings.reload
        if not reload.enabled or self._watcher is not None:
            return

        def accepted(settings: StratumSettings) -> None:
            settings, later = keep_start_values(self.settings, settings)
            self.apply_settings(settings)
            metrics.CONFIG_RELOADS.labels("ok").inc()
            for key in later:
                logger.warning("stratum: %s changed in %s; it takes effect when the gateway restarts (the "
                               "running value stays until then)", key, path)

        def refused(message: str) -> None:
            metrics.CONFIG_RELOADS.labels("error").inc()

        self._watcher = ConfigWatcher(path, accepted, refused, reload.interval_s, also=self._profile_files)
        self._watcher.start()

    def _profile_files(self) -> list[Path]:
        """The scoring profile's file, when the settings in force name one (not a builtin)."""
        where = resolve(self.settings.complexity.profile, settings_folder(self.source))
        return [] if where.startswith("builtin:") else [Path(where)]

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        metrics.withdraw(self)
        self.learning.close()
        self.signals.close()

    def stats(self) -> RouterStats:
        """What the router reports about itself now (metrics read this at each scrape)."""
        settings = self.settings
        snapshot = self.signals.snapshot()
        gpus = {}
        for tier, tier_settings in settings.tiers.items():
            # With the GPU checks off (a gateway away from its GPU host), there is no GPU
            # signal to report: none shown rather than an "unknown" that never clears.
            if settings.gpu.enabled and not tier_settings.overflow:
                gpus.setdefault(tier_settings.gpu_index, snapshot[tier].gpu)
        backends = {tier: signals.backend for tier, signals in snapshot.tiers.items() if signals.backend is not None}
        budgets = {tier: signals.budget for tier, signals in snapshot.tiers.items() if signals.budget is not None}
        local = self.signals.latency
        shared = self.signals.shared
        return RouterStats(
            settings=settings,
            # Averages as decisions read them (the fleet's, with shared state); in flight and
            # samples this process's own, so the gauges of several processes add up.
            latency={tier: replace(signals.latency, in_flight=local.in_flight(tier),
                                   samples=local.tier(tier).samples)
                     for tier, signals in snapshot.tiers.items()},
            shared_up=None if shared is None else shared.up,
            profile=getattr(self.policy.scorer, "profile", None),  # a test's fixed scorer has none
            learning_active=settings.learning.active,
            samples_in_progress=self.learning.in_progress,
            agreement=self.learning.agreement,
            gpus=gpus,
            backends=backends,  # type: ignore[arg-type]
            budgets=budgets,  # type: ignore[arg-type]
        )

    # -- requests -----------------------------------------------------------------------

    def route(self, data: MutableMapping[str, Any], meta: RequestMeta | None = None) -> Decision | None:
        """Decide a tier for a request body and rewrite its ``model`` in place, from this
        process's signals and the last shared view (no I/O).

        Returns None (body untouched) for requests that are not the router's."""
        plan = _Plan.of(self, data, meta)
        if plan is None:
            return None
        return self._apply(plan, self._decide(plan))

    async def route_shared(self, data: MutableMapping[str, Any], meta: RequestMeta | None = None) -> Decision | None:
        """:meth:`route`, checked against every process of the gateway: a tier with a
        limit is claimed in Redis (a refusal walks on down the ladder), and the tier of a
        conversation past its first turn is looked up unless this process has it on top. The waits together stay within
        ``shared_state.budget_ms``; past it, or with Redis down, this is :meth:`route`."""
        shared = self.signals.shared
        if shared is None:
            return self.route(data, meta)
        if not shared.settled:  # just started: the fleet's counts, not this process's empty ones
            await shared.settle(self.settings.shared_state.start_wait_ms / 1000.0)
        if not shared.up:
            metrics.SHARED_LOCAL.inc()
            return self.route(data, meta)
        plan = _Plan.of(self, data, meta)
        if plan is None:
            return None
        waited = 0.0
        budget_s = plan.settings.shared_state.budget_ms / 1000.0
        try:
            conversation = plan.conversation
            if (conversation is not None and (conversation.startswith("session:") or continues(data))
                    and self.affinity.tier(conversation) != plan.policy.ladder.local[-1]):
                started = time.perf_counter()
                tier = await shared.recall(conversation, budget_s)
                waited += time.perf_counter() - started
                if tier is not None:
                    self.affinity.record(conversation, tier)
            # The claim is what counts every process's requests, at this moment; the view's
            # count may be a tick old (a place freed since), so the decision goes by its own.
            snapshot = _own_counts(self.signals.snapshot(), self.signals.latency.in_flight)
            decision = self._decide(plan, snapshot)
            for _ in range(3 * len(plan.settings.tiers)):  # each refusal rules one tier or share out
                ask = self._claim_needed(plan, decision, snapshot)
                if ask is None:
                    break
                limit, who, owner_limit, probe_s = ask
                started = time.perf_counter()
                claim = await shared.claim(decision.tier, plan.call_id, limit, who, owner_limit, probe_s,
                                           budget_s - waited)
                waited += time.perf_counter() - started
                if claim.result is Claimed.GRANTED:
                    break
                if claim.result is Claimed.UNKNOWN:
                    # No answer in time: the place is not confirmed, so the request does
                    # not take it (over-filling a tier costs more than one request a rung
                    # lower); a few in a row and no request waits (routed locally).
                    shared.drop(plan.call_id)
                    claim = Claim(Claimed.TIER_FULL, count=max(limit or 0, 1))
                snapshot = _refused(snapshot, decision.tier, who, claim)
                decision = self._decide(plan, snapshot)
        except Exception as exc:  # fail open, as route() does
            if plan.requested != plan.settings.routed_model:
                return None
            self.record_error("decide", exc)
            decision = plan.policy.fallback(exc)
        metrics.SHARED_WAIT_SECONDS.observe(waited)
        return self._apply(plan, decision)

    def _claim_needed(self, plan: "_Plan", decision: Decision | None,
                      snapshot: SignalSnapshot) -> tuple[int | None, str | None, int | None, float | None] | None:
        """What to claim for ``decision`` (tier limit, owner, owner limit, probe), or None:
        no limit to hold it to, or a decision that skipped the checks (it is counted by
        the next tick instead)."""
        if decision is None or plan.call_id is None or plan.shadow(decision):
            return None
        settings, ladder = plan.settings, plan.policy.ladder
        if decision.tier == ladder.floor or decision.reason in _UNCHECKED:
            return None
        tier_settings = settings.tiers[decision.tier]
        limit = in_flight_limit(tier_settings, snapshot[decision.tier])
        owner_limit = tier_settings.max_in_flight_per_user
        who = owner(plan.meta, settings.fairness.by) if owner_limit is not None and plan.meta is not None else None
        probe_s = settings.latency.probe_interval_s if decision.probe else None
        if limit is None and who is None and probe_s is None:
            return None
        return limit, who, owner_limit if who is not None else None, probe_s

    def _decide(self, plan: "_Plan", snapshot: SignalSnapshot | None = None) -> Decision | None:
        started = time.perf_counter()
        try:
            snapshot = snapshot if snapshot is not None else self.signals.snapshot()
            decision = plan.policy.decide(plan.view, plan.requested, snapshot, plan.meta,
                                          sticky_tier=self.affinity.tier(plan.conversation))
        except Exception as exc:  # fail open: the request still goes somewhere sane
            if plan.requested != plan.settings.routed_model:
                return None  # a forced or foreign request passes untouched, as without us
            self.record_error("decide", exc)
            decision = plan.policy.fallback(exc)
        plan.decide_s += time.perf_counter() - started
        return decision

    def _apply(self, plan: "_Plan", decision: Decision | None) -> Decision | None:
        """Put ``decision`` in force: the body, the metrics, the in-flight count, the
        conversation's tier and the overflow's budget."""
        if decision is None:
            return None
        policy, settings, data = plan.policy, plan.settings, plan.data
        shadow = plan.shadow(decision)
        if decision.reason is Reason.TIER_LOADING and settings.backend_polling.warm_up_cold_smart and not shadow:
            try:
                poller = self.signals.backend_poller
                if poller is not None and decision.wanted is not None:
                    poller.warm_up(decision.wanted)  # only sets a flag; the poller sends it, rate-limited
            except Exception as exc:
                self.record_error("warm_up", exc)
        metrics.DECISION_SECONDS.observe(plan.decide_s)
        (metrics.SHADOW_DECISIONS if shadow else metrics.DECISIONS).labels(decision.tier, decision.label).inc()
        if decision.score is not None:
            metrics.SCORES.observe(decision.score)
        try:
            shared = self.signals.shared
            if decision.reason is not Reason.FORCED and decision.reason is not Reason.ROUTER_ERROR:
                # The overflow tier stands in for the tier the conversation reached.
                reached = decision.wanted if decision.tier == policy.ladder.overflow else decision.tier
                self.affinity.record(plan.conversation, reached or decision.tier)
                if shared is not None and plan.conversation is not None:
                    shared.remember(plan.conversation, reached or decision.tier,
                                    policy.ladder.rank.get(reached or decision.tier, 0))
            write(data, decision, plan.requested if shadow else None)
            call_id = plan.call_id
            if call_id is not None and not shadow:  # in flight where it really runs
                limited = settings.tiers[decision.tier].max_in_flight_per_user is not None
                holder = owner(plan.meta, settings.fairness.by) if limited and plan.meta is not None else None
                self.signals.latency.begin(call_id, decision.tier, decision.probe, holder)
                if shared is not None and not shared.holds(call_id):
                    shared.hold(call_id, decision.tier, holder)
            budget = self.signals.budget
            if budget is not None and decision.tier == policy.ladder.overflow and not shadow:
                budget.charge_request()  # forced ones too: it is the same money
                if shared is not None:
                    shared.charge(requests=1)
            if settings.learning.active:
                self.learning.note(plan.call_id, data, plan.meta, plan.view, decision, policy)
        except Exception as exc:
            if plan.requested == settings.routed_model:
                self.fail_open(data, exc, "apply")
            else:
                self.record_error("apply", exc)
        return decision

    def fail_open(self, data: MutableMapping[str, Any], exc: BaseException, where: str) -> None:
        """Send a routed request to the tier it would get without the plugin, and say so."""
        self.record_error(where, exc)
        decision = self.policy.fallback(exc)
        keep = data.get("model") if self.settings.mode == "shadow" else None
        try:
            write(data, decision, keep if isinstance(keep, str) else None)
        except Exception:  # a body we cannot even write metadata into: the model is enough
            if keep is None:
                data["model"] = decision.model_group

    # -- outcomes (the gateway's success / failure callbacks) ---------------------------

    def observe(self, kwargs: Mapping[str, Any], start_time: Any, end_time: Any, ok: bool,
                answer: str | None = None) -> Tier | None:
        """Feed one finished call back into the tier that served it (``answer``: its text,
        for a judged sample). Never raises."""
        try:
            params = kwargs.get("litellm_params")
            if is_sample(params.get("metadata") if isinstance(params, Mapping) else None):
                return None  # a judged sample's own call: the sampler counts it
            tier = self._served_tier(kwargs)
            call_id = kwargs.get("litellm_call_id")
            call_id = call_id if isinstance(call_id, str) else None
            total_ms = elapsed_ms(start_time, end_time)
            latency = self.signals.latency
            result = outcome(kwargs, ok)
            if result is not Outcome.SERVED:
                self.learning.forget(call_id)
            if result is Outcome.NOT_THE_TIER:
                latency.release(call_id)
            elif result is Outcome.TIER_FAILED:
                latency.observe_failure(call_id, tier, total_ms)
            else:
                ttft_ms = None
                if kwargs.get("stream"):
                    ttft_ms = elapsed_ms(start_time, kwargs.get("completion_start_time"))
                if result is Outcome.CUT_SHORT:
                    total_ms = None
                elif tier is not None and tier != routed_tier(kwargs, tier):
                    # A fallback served it: its times include the failed attempt before it.
                    ttft_ms = total_ms = None
                latency.observe_success(call_id, tier, ttft_ms, total_ms)
                budget = self.signals.budget
                if budget is not None and tier is not None and tier == self.policy.ladder.overflow:
                    cost = cost_of(kwargs)
                    budget.charge_spend(cost)
                    if self.signals.shared is not None and cost > 0:
                        self.signals.shared.charge(spend_usd=cost)
                if result is Outcome.SERVED:
                    self.learning.answered(call_id, tier, answer)
            return tier
        except Exception as exc:
            self.record_error("observe", exc)
            return None

    def _served_tier(self, kwargs: Mapping[str, Any]) -> Tier | None:
        slo = kwargs.get("standard_logging_object")
        group = slo.get("model_group") if isinstance(slo, Mapping) else None
        if not isinstance(group, str):
            params = kwargs.get("litellm_params")
            meta = params.get("metadata") if isinstance(params, Mapping) else None
            group = meta.get("model_group") if isinstance(meta, Mapping) else None
        return self.settings.tier_of_group(group) if isinstance(group, str) else None

    def record_error(self, where: str, exc: BaseException) -> None:
        self.error_count += 1
        metrics.ERRORS.labels(where).inc()
        key = f"{where}:{type(exc).__name__}"
        if key not in self._logged_errors:  # once per kind, not once per request
            self._logged_errors.add(key)
            logger.exception("stratum router internal error in %s; failing open", where)


def _count_shared_error(op: str, exc: BaseException) -> None:
    metrics.SHARED_ERRORS.labels(op).inc()


#: Decisions that did not walk the capacity checks: they are counted, never refused.
_UNCHECKED = frozenset({Reason.FORCED, Reason.FORCED_REDIRECTED, Reason.OVERRIDE, Reason.RULE, Reason.ROUTER_ERROR})


class _Plan:
    """What one request's decisions share: the body, its view, the settings generation."""

    __slots__ = ("data", "meta", "requested", "policy", "settings", "conversation", "view", "call_id", "decide_s")

    def __init__(self, data: MutableMapping[str, Any], meta: RequestMeta | None, requested: str, policy: Policy,
                 conversation: str | None, view: RequestView | None, decide_s: float) -> None:
        self.data, self.meta, self.requested, self.policy = data, meta, requested, policy
        self.settings = policy.settings
        self.conversation, self.view, self.decide_s = conversation, view, decide_s
        call_id = data.get("litellm_call_id")
        self.call_id = call_id if isinstance(call_id, str) and call_id else None

    @classmethod
    def of(cls, engine: "RouterEngine", data: MutableMapping[str, Any], meta: RequestMeta | None) -> "_Plan | None":
        requested = data.get("model")
        if not isinstance(requested, str):
            return None
        started = time.perf_counter()
        policy = engine.policy  # one settings generation for the whole decision
        settings = policy.settings
        conversation, view = None, None
        try:
            if settings.affinity.enabled and requested == settings.routed_model:
                conversation = conversation_key(data)
            view = RequestView.from_request(data)
        except Exception as exc:  # the decision fails open on the missing view
            engine.record_error("decide", exc)
        return cls(data, meta, requested, policy, conversation, view, time.perf_counter() - started)

    def shadow(self, decision: Decision) -> bool:
        """In shadow the decision is only reported: the request keeps the model it asked for."""
        return self.settings.mode == "shadow" and decision.model_group != self.requested


def _own_counts(snapshot: SignalSnapshot, own: Callable[[Tier], int]) -> SignalSnapshot:
    """``snapshot`` with each tier's in-flight count this process's own."""
    tiers = {tier: replace(rung, latency=replace(rung.latency, in_flight=own(tier)))
             for tier, rung in snapshot.tiers.items()}
    return replace(snapshot, tiers=tiers)


def _refused(snapshot: SignalSnapshot, tier: Tier, who: str | None, claim: Claim) -> SignalSnapshot:
    """``snapshot`` as the refused claim showed ``tier``: full, the owner's share full, or
    its probe taken by another process."""
    rung = snapshot[tier]
    if claim.result is Claimed.OWNER_FULL:
        held, owned = snapshot.held, claim.owned

        def held_now(t: Tier, o: str) -> int:
            return owned if (t, o) == (tier, who) else held(t, o)

        return replace(snapshot, held=held_now)
    if claim.result is Claimed.PROBE_TAKEN:
        latency = replace(rung.latency, probe_in_flight=True)
    else:
        latency = replace(rung.latency, in_flight=max(claim.count, rung.latency.in_flight))
    tiers = dict(snapshot.tiers)
    tiers[tier] = replace(rung, latency=latency)
    return replace(snapshot, tiers=tiers)
