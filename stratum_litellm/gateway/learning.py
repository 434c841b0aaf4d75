"""The learning loop inside the gateway: notes at routing, samples and decisions after it.

At routing (the request path) a request gets a note only when it will be needed: it was
drawn as a judged sample (``learning.judged.share``), or it carries Open WebUI's message id
(``learning.feedback``). The note keeps a reference to the request's messages, nothing
else is done there. When its answer is complete (the success callback) the note becomes a
judged sample (:class:`~stratum_litellm.learning.sampler.Sampler`) and/or a decision
recorded for Open WebUI's ratings; the store's writer thread makes the features and writes
them. No LiteLLM here: the glue gives the sampler its way of calling a model group.
"""

from __future__ import annotations

import atexit
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ..config import StratumSettings, Tier, judged_pair
from ..learning.budget import LocalBudget
from ..learning.example import Example
from ..learning.sampler import Answered, Complete, Sample, Sampler
from ..learning.settings import AgreementSettings
from ..learning.store import Decision as Recorded
from ..learning.store import open_store
from ..learning.writer import Agreement, Pending, StoreWriter
from ..routing.decision import Decision, Reason
from ..routing.policy import Policy
from ..routing.rules import RequestMeta
from ..scoring.profile import Profile
from ..scoring.view import RequestView
from ..signals.snapshot import SignalSnapshot
from . import metrics

if TYPE_CHECKING:
    from .engine import RouterEngine

logger = logging.getLogger("stratum_litellm")

_MAX_NOTES = 10_000  # requests waiting for their callback; the oldest go first


@dataclass(frozen=True, slots=True)
class _Note:
    body: Mapping[str, Any]
    sample: bool
    tools: bool
    score: float | None
    profile: str
    #: Open WebUI's ids: message, chat, user message (None: not recorded).
    feedback: tuple[str, str | None, str | None] | None


class LearningLoop:
    """The engine's learning: built with it, active while ``learning`` asks for it."""

    def __init__(self, engine: "RouterEngine") -> None:
        self._engine = engine
        self._notes: OrderedDict[str, _Note] = OrderedDict()
        self._budget = LocalBudget()
        self._sampler: Sampler | None = None
        self._writer: StoreWriter | None = None
        #: The writer's last measure of the profile against the newest labels.
        self.agreement: Agreement | None = None

    # -- set-up

    def attach(self, complete: Complete) -> None:
        """How samples call a model group (the LiteLLM glue's router); samples start then."""
        self._sampler = Sampler(self, complete)

    def configure(self, settings: StratumSettings) -> None:
        """Settings in force (start, reload): open the store when learning is on. The store's
        file is fixed at its first opening; a new path needs a restart (named in the log by
        the reload)."""
        if not settings.learning.active:
            return
        if self._writer is None:
            open_store(settings, self._engine.source).close()  # a bad path fails here, at start
            self._writer = StoreWriter(lambda: open_store(self.settings(), self._engine.source),
                                       self._profile, self._agreement_settings, self._keep_text,
                                       on_dropped=self._dropped, on_agreement=self._agreed)
            self._writer.start()
            # What is queued when the gateway stops is written, not lost (a daemon thread
            # would die with the queue).
            atexit.register(self.close)

    @property
    def writer(self) -> StoreWriter | None:
        return self._writer

    @property
    def in_progress(self) -> int:
        return self._sampler.in_progress if self._sampler is not None else 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
            self._writer = None

    async def stop_sampling(self, timeout_s: float) -> None:
        """Start no more samples; those in progress finish within ``timeout_s`` or are
        cancelled (counted)."""
        if self._sampler is not None:
            self._sampler.stop()
            await self._sampler.close(timeout_s)

    # -- the request path

    def note(self, call_id: str | None, data: Mapping[str, Any], meta: RequestMeta | None, view: RequestView | None,
             decision: Decision, policy: Policy) -> None:
        """Keep what the callback will need, for a request that will need it. Cheap."""
        learning = policy.settings.learning
        if call_id is None or not learning.active or decision.reason in (Reason.FORCED, Reason.FORCED_REDIRECTED):
            return
        sample = self._sampler is not None and self._sampler.chosen()
        feedback = _feedback_ids(meta, learning.feedback) if learning.feedback.enabled else None
        if not sample and feedback is None:
            return
        body = {"messages": data.get("messages"), "tools": data.get("tools")}
        tools = bool(data.get("tools") or data.get("functions")) or (view is not None and bool(view.tools))
        profile = getattr(policy.scorer, "profile", None)
        self._notes[call_id] = _Note(body, sample, tools, decision.score, profile.name if profile else "custom", feedback)
        if len(self._notes) > _MAX_NOTES:
            self._notes.popitem(last=False)

    # -- the callbacks

    def answered(self, call_id: str | None, tier: Tier | None, answer: str | None) -> None:
        """A request's answer is complete (success callback)."""
        note = self._notes.pop(call_id, None) if call_id is not None else None
        if note is None or tier is None:
            return
        settings = self.settings()
        if note.feedback is not None and self._writer is not None:
            message_id, chat_id, user_message_id = note.feedback
            first, _ = judged_pair(settings)
            recorded = Recorded(message_id, tier, tier == first, Example.empty(), chat_id, user_message_id,
                                note.score, note.profile)
            if self._writer.put(Pending(note.body, decision=recorded)):
                metrics.FEEDBACK_DECISIONS.inc()
        if note.sample and self._sampler is not None:
            self._sampler.offer(Answered(call_id or "", tier, note.body, answer, note.score, note.profile, note.tools))

    def forget(self, call_id: str | None) -> None:
        """The request failed or was cut short: no answer to sample or rate."""
        if call_id is not None:
            self._notes.pop(call_id, None)

    # -- what the sampler asks of its host

    def settings(self) -> StratumSettings:
        return self._engine.settings

    def policy(self) -> Policy:
        return self._engine.policy

    def snapshot(self) -> SignalSnapshot:
        return self._engine.signals.snapshot()

    def hold(self, call_id: str, tier: Tier) -> None:
        signals = self._engine.signals
        signals.latency.begin(call_id, tier)
        if signals.shared is not None:
            signals.shared.hold(call_id, tier)

    def release(self, call_id: str) -> None:
        self._engine.signals.latency.release(call_id)

    async def take_budget(self, per_hour: int, per_day: int) -> bool | None:
        shared = self._engine.signals.shared
        if shared is None:
            return self._budget.take(per_hour, per_day)
        return await shared.take_samples(per_hour, per_day, self.settings().shared_state.sync_timeout_s)

    def charge(self, tier: Tier, cost_usd: float) -> None:
        signals = self._engine.signals
        if tier == self.policy().ladder.overflow and signals.budget is not None:
            signals.budget.charge_request()
            signals.budget.charge_spend(cost_usd)
            if signals.shared is not None:
                signals.shared.charge(requests=1, spend_usd=cost_usd)

    def record(self, item: Pending) -> None:
        if self._writer is not None:
            self._writer.put(item)
        else:
            self._dropped("store_busy")

    def report(self, outcome: str, sample: Sample) -> None:
        metrics.SAMPLES.labels(outcome).inc()
        metrics.LEARNING_CALLS.labels("answer").inc(min(sample.calls, 1))
        metrics.LEARNING_CALLS.labels("judge").inc(max(sample.calls - 1, 0))
        metrics.LEARNING_COST.labels("answer").inc(sample.answer_cost_usd)
        metrics.LEARNING_COST.labels("judge").inc(sample.judge_cost_usd)
        if sample.needs_strong is not None:
            first, _ = judged_pair(self.settings())
            verdict = "needs_strong" if sample.needs_strong else "first_enough"
            served = sample.answered.tier
            metrics.JUDGE_VERDICTS.labels(served, verdict).inc()
            if (served == first) == sample.needs_strong:
                metrics.JUDGE_DISAGREEMENTS.labels(served).inc()

    # -- the writer's thread

    def _profile(self) -> Profile:
        return self._engine.policy.scorer.profile

    def _agreement_settings(self) -> AgreementSettings:
        return self.settings().learning.agreement

    def _keep_text(self) -> bool:
        return self.settings().learning.store.keep_text

    def _dropped(self, reason: str) -> None:
        metrics.LABEL_DROPS.labels(reason).inc()

    def _agreed(self, agreement: Agreement) -> None:
        self.agreement = agreement

def _feedback_ids(meta: RequestMeta | None, feedback: Any) -> tuple[str, str | None, str | None] | None:
    """Open WebUI's message id, chat id and user message id from the request headers;
    None for requests that are not an answer Open WebUI shows (no id, or one of its tasks)."""
    headers = meta.headers if meta is not None else None
    if not headers:
        return None
    message_id = headers.get(feedback.message_header, "").strip()
    if not message_id or headers.get(feedback.task_header, "").strip():
        return None
    return (message_id[:200], (headers.get(feedback.chat_header) or "").strip()[:200] or None,
            (headers.get(feedback.user_message_header) or "").strip()[:200] or None)
