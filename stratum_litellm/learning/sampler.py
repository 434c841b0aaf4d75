"""Judged samples: a share of routed requests, answered by the other tier too and graded.

After a routed request's answer is complete (the gateway's success callback), a share of
them (``learning.judged.share``) become samples. A sample asks the other tier of the judged
pair the same conversation, then asks the judge to grade the first tier's answer with the
stronger one's as the reference (:mod:`.judge`); the grade becomes a label.

It never takes a place a user needs: a sample starts only when the other tier and the
judge have room by the router's own signals (``Policy.room``, with ``keep_free`` places left
over), within the hour's and the day's budget (shared by every process when the gateway has
a Redis), and with fewer than ``max_concurrent`` samples in progress; otherwise it is
dropped and counted, never queued. Its calls count in flight on their tiers while they run.
They go through the gateway's own router (:data:`Complete`, given by the LiteLLM glue), so
no proxy hook sees them, and they carry ``metadata.stratum_sample`` so that the router's
callbacks and LiteLLM's logs tell them apart. Every sample ends in exactly one outcome
(:data:`OUTCOMES`), reported to ``report``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..config import StratumSettings, Tier, environment_value, judge_of, judged_pair
from ..routing.policy import Policy
from ..signals.snapshot import SignalSnapshot
from . import judge
from .example import Example
from .labels import Label
from .writer import Pending

logger = logging.getLogger("stratum_litellm")

__all__ = ["Answered", "Complete", "Host", "OUTCOMES", "Reply", "SAMPLE_KEY", "Sample", "Sampler", "call_metadata",
           "is_sample"]

#: Where a sample's calls say what they are, in their request metadata.
SAMPLE_KEY = "stratum_sample"
#: What LiteLLM writes in place of messages and answers with ``turn_off_message_logging``.
REDACTED = "redacted-by-litellm"
#: How a sample ended: labelled; dropped before any call (``no_text``: nothing to compare,
#: ``tools``: the request offered tools, ``redacted``: LiteLLM hides the text, ``busy``:
#: ``max_concurrent`` in progress, ``no_room``: the other tier or the judge had none,
#: ``budget``: the hour's or day's samples are spent, ``budget_unknown``: the shared count
#: could not be read); or failed after a call (``answer_error``, ``judge_error``,
#: ``unparsed``: no grade in the judge's reply, ``cancelled``: the gateway stopped).
OUTCOMES = ("labelled", "no_text", "tools", "redacted", "busy", "no_room", "budget", "budget_unknown",
            "answer_error", "judge_error", "unparsed", "cancelled")


@dataclass(frozen=True, slots=True)
class Answered:
    """A routed request whose answer completed, as the success callback saw it."""

    call_id: str
    tier: Tier
    body: Mapping[str, Any]
    answer: str | None
    score: float | None = None
    profile: str | None = None
    tools: bool = False


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    cost_usd: float = 0.0
    #: The model group that answered (a fallback may answer in its place).
    group: str | None = None


#: ``await complete(model_group, messages, metadata, params)``: one call through the
#: gateway's router, no retries, no fallbacks (the LiteLLM glue provides it).
Complete = Callable[[str, list[Any], dict[str, Any], dict[str, Any]], Awaitable[Reply]]


class Host(Protocol):
    """What a sampler needs of the router around it."""

    def settings(self) -> StratumSettings: ...
    def policy(self) -> Policy: ...
    def snapshot(self) -> SignalSnapshot: ...
    def hold(self, call_id: str, tier: Tier) -> None: ...
    def release(self, call_id: str) -> None: ...
    async def take_budget(self, per_hour: int, per_day: int) -> bool | None: ...
    def charge(self, tier: Tier, cost_usd: float) -> None: ...
    def record(self, item: Pending) -> None: ...
    def report(self, outcome: str, sample: "Sample") -> None: ...


@dataclass(slots=True)
class Sample:
    """One sample's progress, as reported."""

    answered: Answered
    other: Tier
    #: The judge's tier (None: a model group outside the ladder) and model group.
    judge: Tier | None
    judge_group: str
    grade: int | None = None
    needs_strong: bool | None = None
    answer_cost_usd: float = 0.0
    judge_cost_usd: float = 0.0
    calls: int = 0


class Sampler:
    def __init__(self, host: Host, complete: Complete, draw: Callable[[], float] = random.random) -> None:
        self._host = host
        self._complete = complete
        self._draw = draw
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: dict[str, None] = {}
        self._stopping = False

    @property
    def in_progress(self) -> int:
        return len(self._tasks)

    def chosen(self) -> bool:
        """Whether the next routed request is to be a sample (the share, drawn at random)."""
        judged = self._host.settings().learning.judged
        return judged.enabled and self._draw() < judged.share

    def offer(self, answered: Answered) -> None:
        """A chosen request's answer is complete: start its sample, or drop it (counted).
        Cheap and never raises: it runs in the success callback."""
        if answered.call_id in self._seen:
            return  # a success event delivered twice (LiteLLM #5118)
        self._seen[answered.call_id] = None
        if len(self._seen) > 4096:
            del self._seen[next(iter(self._seen))]
        settings = self._host.settings()
        judged = settings.learning.judged
        weak, strong = judged_pair(settings)
        if answered.tier not in (weak, strong):
            return  # served by a tier the pair does not compare (the overflow tier, a third rung)
        sample = Sample(answered, strong if answered.tier == weak else weak, *judge_of(settings))
        why = "cancelled" if self._stopping else self._first_look(answered, judged.max_concurrent)
        if why is None:
            policy, snapshot = self._host.policy(), self._host.snapshot()
            for tier in dict.fromkeys(t for t in (sample.other, sample.judge) if t is not None):
                if policy.room(tier, snapshot, judged.keep_free) is not None:
                    why = "no_room"
                    break
        if why is not None:
            self._host.report(why, sample)
            return
        task = asyncio.get_running_loop().create_task(self._run(sample), name="stratum-judged-sample")
        self._tasks.add(task)  # a reference held until it ends (LiteLLM #8842: none is collected)
        task.add_done_callback(self._done)

    def _first_look(self, answered: Answered, max_concurrent: int) -> str | None:
        if answered.tools:
            return "tools"
        if not answered.answer or not answered.answer.strip():
            return "no_text"
        if answered.answer.strip() == REDACTED:
            return "redacted"
        if len(self._tasks) >= max_concurrent:
            return "busy"
        return None

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("stratum: a judged sample failed unexpectedly", exc_info=task.exception())

    def stop(self) -> None:
        """Start no more samples (the gateway is stopping): each answer that would have
        been one counts as cancelled."""
        self._stopping = True

    async def close(self, timeout_s: float = 5.0) -> None:
        """Let samples in progress finish for ``timeout_s``, then cancel the rest (counted)."""
        tasks = list(self._tasks)
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    # -- one sample

    async def _run(self, sample: Sample) -> None:
        host = self._host
        try:
            outcome = await self._sample(sample)
        except asyncio.CancelledError:
            host.report("cancelled", sample)
            raise
        host.report(outcome, sample)

    async def _sample(self, sample: Sample) -> str:
        host = self._host
        settings = host.settings()
        judged = settings.learning.judged
        allowed = await host.take_budget(judged.per_hour, judged.per_day)
        if allowed is None:
            return "budget_unknown"
        if not allowed:
            return "budget"
        answered = sample.answered
        messages = list(answered.body.get("messages") or [])
        try:
            other = await self._call(sample, sample.other, settings.model_group(sample.other), "answer", messages,
                                     {"max_tokens": judged.max_tokens})
        except Exception as exc:
            logger.info("stratum: judged sample: the %s tier's answer failed: %s", sample.other, _brief(exc))
            return "answer_error"
        sample.answer_cost_usd = other.cost_usd
        if not other.text.strip():
            return "answer_error"
        weak, _ = judged_pair(settings)
        candidate, reference = ((answered.answer or "", other.text) if answered.tier == weak
                                else (other.text, answered.answer or ""))
        if sample.judge is not None and host.policy().room(sample.judge, host.snapshot(), judged.keep_free) is not None:
            return "no_room"  # the judge filled up while the other tier answered
        params: dict[str, Any] = {"temperature": 0.0, "max_tokens": 200}
        if judged.structured:
            params["response_format"] = dict(judge.RESPONSE_FORMAT)
        try:
            verdict = await self._call(sample, sample.judge, sample.judge_group, "judge",
                                       judge.messages(messages, reference, candidate), params)
        except Exception as exc:
            logger.info("stratum: judged sample: the judge (%s) failed: %s", sample.judge, _brief(exc))
            return "judge_error"
        sample.judge_cost_usd = verdict.cost_usd
        sample.grade = judge.grade(verdict.text)
        if sample.grade is None:
            return "unparsed"
        sample.needs_strong = sample.grade < judged.good_enough_at
        label = Label(Example.empty(), sample.needs_strong, "judge", ref=f"judge:{answered.call_id}",
                      tier=answered.tier, score=answered.score, profile=answered.profile, grade=sample.grade,
                      created=time.time())
        host.record(Pending(answered.body, label=label))
        return "labelled"

    async def _call(self, sample: Sample, tier: Tier | None, group: str, kind: str, messages: list[Any],
                    params: dict[str, Any]) -> Reply:
        """One call to a model group, counted in flight on its tier (if it is one) while it runs."""
        host = self._host
        settings = host.settings()
        call_id = f"stratum-{kind}-{uuid.uuid4().hex}"
        metadata = call_metadata(settings, kind, sample.answered.call_id, group)
        if tier is not None:
            host.hold(call_id, tier)
        sample.calls += 1
        try:
            reply = await asyncio.wait_for(self._complete(group, messages, metadata, params),
                                           settings.learning.judged.timeout_s)
        finally:
            if tier is not None:
                host.release(call_id)
        if tier is not None:
            host.charge(tier, reply.cost_usd)
        if reply.group is not None and reply.group != group:
            raise RuntimeError(f"{reply.group} answered in place of {group}")
        return reply


def call_metadata(settings: StratumSettings, kind: str, parent: str, group: str) -> dict[str, Any]:
    """A sample call's request metadata: what it is, and who it is charged to (LiteLLM's
    ``user_api_key_*`` fields and tags, which its spend logs and logging payloads read).
    A new dict each call: LiteLLM's router writes into it."""
    identity = settings.learning.judged.identity
    metadata: dict[str, Any] = {
        SAMPLE_KEY: {"kind": kind, "parent": parent, "model_group": group},
        "tags": ["stratum:judged-sample", f"stratum:{kind}"],
        "user_api_key_alias": identity.key_alias,
        "user_api_key_user_id": identity.user_id,
        "user_api_key_team_id": identity.team_id,
        "user_api_key_end_user_id": identity.end_user,
    }
    key = environment_value(identity.key) if identity.key is not None else None
    if key:
        hashed = key if not key.startswith("sk-") else hashlib.sha256(key.encode()).hexdigest()
        metadata["user_api_key"] = metadata["user_api_key_hash"] = hashed  # equal: the spend row keeps it
    return metadata


def is_sample(metadata: Any) -> bool:
    """Whether a call's metadata is a judged sample's own."""
    return isinstance(metadata, Mapping) and SAMPLE_KEY in metadata


def _brief(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200] if text else ''}"

