"""The router as the gateway sees it: route a request body, learn from its outcome.

Everything here works on plain dictionaries (the request body, the callback keyword
arguments), so it runs and is tested without LiteLLM; :mod:`.plugin` only adapts LiteLLM's
hook signatures to it. Routing fails open: any internal error sends the request to the
tier it would get without the plugin, and never reaches the client.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from typing import Any, Mapping, MutableMapping, Sequence

from ..config import StratumSettings, Tier
from ..model_list import fill_backends
from ..routing.affinity import AffinityStore, conversation_key
from ..routing.decision import Decision, Reason
from ..routing.policy import Policy
from ..routing.rules import RequestMeta, owner
from ..scoring.view import RequestView
from ..signals.snapshot import Signals
from . import metrics
from .outcome import Outcome, outcome
from .reload import ConfigWatcher
from .stats import RouterStats

logger = logging.getLogger("stratum_litellm")

#: Key under the request's ``metadata`` where the decision travels to the callbacks.
METADATA_KEY = "stratum"


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

    @classmethod
    def polling(cls, settings: StratumSettings, source: str,
                model_list: Sequence[Any] | None = None) -> "RouterEngine":
        """An engine whose signals poll the GPU and each tier's backend, read from
        ``backend:`` or else from the group's api_base in ``model_list``."""
        settings, notes = fill_backends(settings, model_list)
        for tier, note in notes.items():
            logger.info("stratum router: tier %s backend signals: %s", tier, note)
        return cls(settings, Signals.polling(settings), source=source, model_list=model_list)

    @property
    def settings(self) -> StratumSettings:
        return self.policy.settings

    def apply_settings(self, settings: StratumSettings) -> None:
        """Put new settings in force without dropping a request; raises (and changes
        nothing) when they cannot be built, e.g. a python rule that does not import."""
        settings, _ = fill_backends(settings, self.model_list)
        policy = Policy(settings, source=self.source)  # may raise: nothing changed yet
        self.signals.reconfigure(settings)  # all or nothing
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
            self.apply_settings(settings)
            metrics.CONFIG_RELOADS.labels("ok").inc()

        def refused(message: str) -> None:
            metrics.CONFIG_RELOADS.labels("error").inc()

        self._watcher = ConfigWatcher(path, accepted, refused, reload.interval_s)
        self._watcher.start()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
        metrics.withdraw(self)
        self.signals.close()

    def stats(self) -> RouterStats:
        """What the router reports about itself now (metrics read this at each scrape)."""
        settings = self.settings
        snapshot = self.signals.snapshot()
        gpus = {}
        for tier, tier_settings in settings.tiers.items():
            if not tier_settings.overflow:
                gpus.setdefault(tier_settings.gpu_index, snapshot[tier].gpu)
        backends = {tier: signals.backend for tier, signals in snapshot.tiers.items() if signals.backend is not None}
        budgets = {tier: signals.budget for tier, signals in snapshot.tiers.items() if signals.budget is not None}
        return RouterStats(
            settings=settings,
            latency={tier: signals.latency for tier, signals in snapshot.tiers.items()},
            gpus=gpus,
            backends=backends,  # type: ignore[arg-type]
            budgets=budgets,  # type: ignore[arg-type]
        )

    # -- requests -----------------------------------------------------------------------

    def route(self, data: MutableMapping[str, Any], meta: RequestMeta | None = None) -> Decision | None:
        """Decide a tier for a request body and rewrite its ``model`` in place.

        Returns None (body untouched) for requests that are not the router's."""
        requested = data.get("model")
        if not isinstance(requested, str):
            return None
        started = time.perf_counter()
        policy = self.policy  # one settings generation for the whole decision
        settings = policy.settings
        conversation = None
        try:
            if settings.affinity.enabled and requested == settings.routed_model:
                conversation = conversation_key(data)
            view = RequestView.from_request(data)
            decision = policy.decide(view, requested, self.signals.snapshot(), meta,
                                     sticky_tier=self.affinity.tier(conversation))
            if decision is not None and decision.reason is not Reason.FORCED:
                # The overflow tier stands in for the tier the conversation reached.
                reached = decision.wanted if decision.tier == policy.ladder.overflow else decision.tier
                self.affinity.record(conversation, reached or decision.tier)
        except Exception as exc:  # fail open: the request still goes somewhere sane
            if requested != settings.routed_model:
                return None  # a forced or foreign request passes untouched, as without us
            self.record_error("decide", exc)
            decision = policy.fallback(exc)
        if decision is None:
            return None
        # In shadow the decision is only reported: the request keeps the model it asked for.
        shadow = settings.mode == "shadow" and decision.model_group != requested
        if decision.reason is Reason.SMART_LOADING and settings.backend_polling.warm_up_cold_smart and not shadow:
            try:
                poller = self.signals.backend_poller
                if poller is not None and decision.wanted is not None:
                    poller.warm_up(decision.wanted)  # only sets a flag; the poller sends it, rate-limited
            except Exception as exc:
                self.record_error("warm_up", exc)
        metrics.DECISION_SECONDS.observe(time.perf_counter() - started)
        (metrics.SHADOW_DECISIONS if shadow else metrics.DECISIONS).labels(decision.tier, decision.label).inc()
        if decision.score is not None:
            metrics.SCORES.observe(decision.score)
        try:
            _write(data, decision, requested if shadow else None)
            call_id = data.get("litellm_call_id")
            if isinstance(call_id, str) and call_id and not shadow:  # in flight where it really runs
                limited = settings.tiers[decision.tier].max_in_flight_per_user is not None
                holder = owner(meta, settings.fairness.by) if limited and meta is not None else None
                self.signals.latency.begin(call_id, decision.tier, decision.probe, holder)
            budget = self.signals.budget
            if budget is not None and decision.tier == policy.ladder.overflow and not shadow:
                budget.charge_request()  # forced ones too: it is the same money
        except Exception as exc:
            if requested == settings.routed_model:
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
            _write(data, decision, keep if isinstance(keep, str) else None)
        except Exception:  # a body we cannot even write metadata into: the model is enough
            if keep is None:
                data["model"] = decision.model_group

    # -- outcomes (the gateway's success / failure callbacks) ---------------------------

    def observe(self, kwargs: Mapping[str, Any], start_time: Any, end_time: Any, ok: bool) -> Tier | None:
        """Feed one finished call back into the tier that served it. Never raises."""
        try:
            tier = self._served_tier(kwargs)
            call_id = kwargs.get("litellm_call_id")
            call_id = call_id if isinstance(call_id, str) else None
            total_ms = _elapsed_ms(start_time, end_time)
            latency = self.signals.latency
            result = outcome(kwargs, ok)
            if result is Outcome.NOT_THE_TIER:
                latency.release(call_id)
            elif result is Outcome.TIER_FAILED:
                latency.observe_failure(call_id, tier, total_ms)
            else:
                ttft_ms = None
                if kwargs.get("stream"):
                    ttft_ms = _elapsed_ms(start_time, kwargs.get("completion_start_time"))
                if result is Outcome.CUT_SHORT:
                    total_ms = None
                elif tier is not None and tier != _routed_tier(kwargs, tier):
                    # A fallback served it: its times include the failed attempt before it.
                    ttft_ms = total_ms = None
                latency.observe_success(call_id, tier, ttft_ms, total_ms)
                budget = self.signals.budget
                if budget is not None and tier is not None and tier == self.policy.ladder.overflow:
                    budget.charge_spend(_cost(kwargs))
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


def _write(data: MutableMapping[str, Any], decision: Decision, shadow_model: str | None = None) -> None:
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


def _routed_tier(kwargs: Mapping[str, Any], default: Tier) -> Tier:
    """The tier the router sent the call to (its decision travels in the metadata)."""
    params = kwargs.get("litellm_params")
    meta = params.get("metadata") if isinstance(params, Mapping) else None
    record = meta.get(METADATA_KEY) if isinstance(meta, Mapping) else None
    if isinstance(record, Mapping) and record.get("mode") == "route" and isinstance(record.get("tier"), str):
        return record["tier"]
    return default


def _cost(kwargs: Mapping[str, Any]) -> float:
    """LiteLLM's cost of a call in US dollars (0 when it does not know one)."""
    cost = kwargs.get("response_cost")
    if not isinstance(cost, (int, float)):
        slo = kwargs.get("standard_logging_object")
        cost = slo.get("response_cost") if isinstance(slo, Mapping) else None
    return float(cost) if isinstance(cost, (int, float)) and not isinstance(cost, bool) else 0.0


def _elapsed_ms(start: Any, end: Any) -> float | None:
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
