"""Judged samples: each ends in exactly one outcome; it labels the request from the judge's
grade; it never takes a place a user needs (room by the router's own policy and signals,
the budget, at most ``max_concurrent``); its calls count in flight while they run and say
what they are and who pays for them.

The sampler's Host and its ``complete`` call are injected interfaces, implemented by the
gateway (tested with a real LiteLLM in the e2e tests). Here the Host is a small in-process
fake built on the real parts it hands out (settings, Policy, Signals with their latency
tracker, LocalBudget), and ``complete`` is a fake coroutine that records its calls and
answers as each test says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from stratum_litellm.config import StratumSettings, Tier, parse_settings
from stratum_litellm.learning import judge
from stratum_litellm.learning.budget import LocalBudget
from stratum_litellm.learning.sampler import (
    OUTCOMES,
    REDACTED,
    SAMPLE_KEY,
    Answered,
    Reply,
    Sample,
    Sampler,
    call_metadata,
    is_sample,
)
from stratum_litellm.learning.writer import Pending
from stratum_litellm.routing.policy import Policy
from stratum_litellm.signals.snapshot import Signals, SignalSnapshot

BODY = {"messages": [{"role": "user", "content": "Prove that there are infinitely many primes."}], "tools": None}
WEAK_ANSWER = "There are many primes."
STRONG_ANSWER = "Suppose finitely many; multiply them and add one: a contradiction, so there are infinitely many."


def make_settings(judged: dict[str, Any] | None = None, tiers: dict[str, Any] | None = None) -> StratumSettings:
    raw: dict[str, Any] = {"learning": {"judged": {"enabled": True, "share": 1.0, **(judged or {})}}}
    if tiers is not None:
        raw["tiers"] = tiers
    return parse_settings(raw)


class FakeHost:
    """The Host protocol over the real policy, signals and local budget (see the module doc)."""

    def __init__(self, settings: StratumSettings, budget: Callable[[int, int], bool | None] | None = None) -> None:
        self._settings = settings
        self._policy = Policy(settings)
        self.signals = Signals(settings)
        self.budget = LocalBudget()
        self._take = budget
        self.records: list[Pending] = []
        self.reports: list[tuple[str, Sample]] = []
        self.charges: list[tuple[Tier, float]] = []

    def settings(self) -> StratumSettings:
        return self._settings

    def policy(self) -> Policy:
        return self._policy

    def snapshot(self) -> SignalSnapshot:
        return self.signals.snapshot()

    def hold(self, call_id: str, tier: Tier) -> None:
        self.signals.latency.begin(call_id, tier)

    def release(self, call_id: str) -> None:
        self.signals.latency.release(call_id)

    async def take_budget(self, per_hour: int, per_day: int) -> bool | None:
        return self._take(per_hour, per_day) if self._take is not None else self.budget.take(per_hour, per_day)

    def charge(self, tier: Tier, cost_usd: float) -> None:
        self.charges.append((tier, cost_usd))

    def record(self, item: Pending) -> None:
        self.records.append(item)

    def report(self, outcome: str, sample: Sample) -> None:
        self.reports.append((outcome, sample))

    @property
    def outcomes(self) -> list[str]:
        return [outcome for outcome, _ in self.reports]


@dataclass
class Call:
    group: str
    messages: list[Any]
    metadata: dict[str, Any]
    params: dict[str, Any]
    in_flight: dict[str, int]


@dataclass
class FakeComplete:
    """``complete``: records each call (and what was in flight on each tier during it) and
    answers from ``answers``, by the call's kind ("answer" or "judge"): a Reply, an
    exception to raise, or a coroutine function to await."""

    host: FakeHost
    answers: dict[str, Any] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)

    async def __call__(self, group: str, messages: list[Any], metadata: dict[str, Any], params: dict[str, Any]) -> Reply:
        latency = self.host.signals.latency
        self.calls.append(Call(group, messages, metadata, params,
                               {t: latency.in_flight(t) for t in self.host.settings().tiers}))
        kind = metadata[SAMPLE_KEY]["kind"]
        answer = self.answers.get(kind)
        if answer is None:
            answer = (Reply(STRONG_ANSWER, 0.002, group) if kind == "answer"
                      else Reply('{"rating": 2, "reason": "misses the proof"}', 0.001, group))
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            return await answer(group, messages, metadata, params)
        return answer


def answered(tier: Tier = "fast", call_id: str = "call-1", answer: str | None = WEAK_ANSWER, tools: bool = False,
             body: dict[str, Any] | None = None) -> Answered:
    return Answered(call_id, tier, body or BODY, answer, 0.31, "default", tools)


async def run(sampler: Sampler) -> None:
    """Let the samples started so far end."""
    await sampler.close(timeout_s=5.0)


async def one_sample(item: Answered | None = None, judged: dict[str, Any] | None = None,
                     answers: dict[str, Any] | None = None,
                     tiers: dict[str, Any] | None = None) -> tuple[FakeHost, FakeComplete]:
    host = FakeHost(make_settings(judged, tiers))
    complete = FakeComplete(host, answers or {})
    sampler = Sampler(host, complete)
    sampler.offer(item or answered())
    await run(sampler)
    return host, complete


# --------------------------------------------------------------------------- labelled


async def test_a_low_grade_labels_the_request_as_needing_the_strong_tier() -> None:
    host, complete = await one_sample()
    assert host.outcomes == ["labelled"]
    (item,) = host.records
    assert item.body is BODY  # the writer makes its features from the body
    label = item.label
    assert label is not None and item.decision is None
    assert (label.needs_strong, label.source, label.grade, label.ref) == (True, "judge", 2, "judge:call-1")
    assert (label.tier, label.score, label.profile, label.weight) == ("fast", 0.31, "default", 1.0)
    assert label.created > 0
    _, sample = host.reports[0]
    assert (sample.grade, sample.needs_strong, sample.calls) == (2, True, 2)
    assert (sample.answer_cost_usd, sample.judge_cost_usd) == (0.002, 0.001)
    assert host.charges == [("smart", 0.002), ("smart", 0.001)]


async def test_the_other_tier_answers_the_conversation_and_the_judge_grades_the_weak_answer() -> None:
    host, complete = await one_sample()
    answer, verdict = complete.calls
    assert answer.group == "gemma4-smart" and answer.messages == BODY["messages"]
    assert answer.params == {"max_tokens": host.settings().learning.judged.max_tokens}
    assert verdict.group == "gemma4-smart"  # the judge: the top local tier
    assert verdict.messages == judge.messages(BODY["messages"], reference=STRONG_ANSWER, candidate=WEAK_ANSWER)
    assert verdict.params == {"temperature": 0.0, "max_tokens": 200, "response_format": dict(judge.RESPONSE_FORMAT)}


async def test_an_answer_of_the_strong_tier_is_the_reference_for_the_weak_tiers() -> None:
    host, complete = await one_sample(answered("smart", answer=STRONG_ANSWER),
                                      answers={"answer": Reply(WEAK_ANSWER, 0.0, "gemma4-fast"),
                                               "judge": Reply('{"rating": 5, "reason": "fine"}')})
    answer, verdict = complete.calls
    assert answer.group == "gemma4-fast"
    assert verdict.messages == judge.messages(BODY["messages"], reference=STRONG_ANSWER, candidate=WEAK_ANSWER)
    (item,) = host.records
    assert item.label is not None and item.label.needs_strong is False and item.label.tier == "smart"


@pytest.mark.parametrize("grade, good_enough_at, needs_strong", [
    (5, 4, False), (4, 4, False), (3, 4, True), (1, 4, True), (3, 3, False), (2, 3, True), (4, 5, True), (5, 5, False),
])
async def test_the_verdict_is_the_grade_against_good_enough_at(grade: int, good_enough_at: int,
                                                                needs_strong: bool) -> None:
    host, _ = await one_sample(judged={"good_enough_at": good_enough_at},
                               answers={"judge": Reply(f"Rating: {grade}")})
    assert host.outcomes == ["labelled"]
    assert host.records[0].label.needs_strong is needs_strong and host.records[0].label.grade == grade


async def test_without_structured_output_the_judge_is_not_asked_for_a_schema() -> None:
    _, complete = await one_sample(judged={"structured": False})
    assert "response_format" not in complete.calls[1].params


# --------------------------------------------------------------------------- dropped before any call


@pytest.mark.parametrize("item, outcome", [
    (answered(tools=True), "tools"),
    (answered(answer=None), "no_text"),
    (answered(answer="  \n "), "no_text"),
    (answered(answer=REDACTED), "redacted"),
    (answered(answer=f"  {REDACTED}\n"), "redacted"),
])
async def test_requests_with_nothing_to_compare_are_dropped(item: Answered, outcome: str) -> None:
    host, complete = await one_sample(item)
    assert host.outcomes == [outcome] and complete.calls == [] and host.records == []


LIMITED = {"fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart", "max_in_flight": 3}}


async def test_no_sample_while_the_other_tier_lacks_room_for_it_and_the_places_kept_free() -> None:
    host = FakeHost(make_settings({"keep_free": 1}, LIMITED))
    complete = FakeComplete(host)
    sampler = Sampler(host, complete)
    host.signals.latency.begin("user-1", "smart")
    host.signals.latency.begin("user-2", "smart")  # 2 of 3 taken: one free, and it is kept for users
    sampler.offer(answered(call_id="a"))
    await run(sampler)
    assert host.outcomes == ["no_room"] and complete.calls == []
    host.signals.latency.release("user-2")  # now 1 of 3: room for the sample and the place kept free
    sampler.offer(answered(call_id="b"))
    await run(sampler)
    assert host.outcomes == ["no_room", "labelled"]


async def test_keep_free_zero_lets_a_sample_take_the_last_place() -> None:
    host = FakeHost(make_settings({"keep_free": 0}, LIMITED))
    sampler = Sampler(host, FakeComplete(host))
    host.signals.latency.begin("user-1", "smart")
    host.signals.latency.begin("user-2", "smart")
    sampler.offer(answered())
    await run(sampler)
    assert host.outcomes == ["labelled"]


async def test_no_judging_when_the_judge_filled_up_while_the_other_tier_answered() -> None:
    tiers = {"fast": {"model_group": "gemma4-fast", "max_in_flight": 2}, "smart": {"model_group": "gemma4-smart"}}
    host = FakeHost(make_settings({"keep_free": 1, "judge": "fast"}, tiers))

    async def users_arrive(group: str, messages: Any, metadata: Any, params: Any) -> Reply:
        host.signals.latency.begin("user-1", "fast")  # the judge's tier: 1 + 1 kept free = its 2
        return Reply(STRONG_ANSWER, 0.0, group)

    complete = FakeComplete(host, {"answer": users_arrive})
    sampler = Sampler(host, complete)
    sampler.offer(answered())
    await run(sampler)
    assert host.outcomes == ["no_room"] and len(complete.calls) == 1 and host.records == []


async def test_at_most_max_concurrent_samples_and_the_rest_are_dropped_not_queued() -> None:
    host = FakeHost(make_settings({"max_concurrent": 2}))
    gate = asyncio.Event()

    async def slow(group: str, messages: Any, metadata: Any, params: Any) -> Reply:
        await gate.wait()
        return Reply(STRONG_ANSWER, 0.0, group)

    complete = FakeComplete(host, {"answer": slow})
    sampler = Sampler(host, complete)
    for i in range(4):
        sampler.offer(answered(call_id=f"c{i}"))
    await asyncio.sleep(0.05)
    assert sampler.in_progress == 2 and host.outcomes == ["busy", "busy"]
    gate.set()
    await run(sampler)
    assert sorted(host.outcomes) == ["busy", "busy", "labelled", "labelled"]
    assert sampler.in_progress == 0
    sampler.offer(answered(call_id="later"))  # a place is free again
    await run(sampler)
    assert host.outcomes[-1] == "labelled"


async def test_the_hours_budget_spent_drops_samples() -> None:
    host = FakeHost(make_settings({"per_hour": 2, "per_day": 100}))
    complete = FakeComplete(host)
    sampler = Sampler(host, complete)
    for i in range(4):
        sampler.offer(answered(call_id=f"c{i}"))
        await run(sampler)
    assert host.outcomes == ["labelled", "labelled", "budget", "budget"]
    assert len(complete.calls) == 4  # the dropped ones called nothing


async def test_the_days_budget_spent_drops_samples() -> None:
    host = FakeHost(make_settings({"per_hour": 100, "per_day": 0}))
    sampler = Sampler(host, FakeComplete(host))
    sampler.offer(answered())
    await run(sampler)
    assert host.outcomes == ["budget"]


async def test_a_budget_that_cannot_be_read_drops_the_sample() -> None:
    # The host answers None when the shared count is out of reach (the gateway's Redis).
    host = FakeHost(make_settings(), budget=lambda per_hour, per_day: None)
    complete = FakeComplete(host)
    sampler = Sampler(host, complete)
    sampler.offer(answered())
    await run(sampler)
    assert host.outcomes == ["budget_unknown"] and complete.calls == []


# --------------------------------------------------------------------------- failed after a call


@pytest.mark.parametrize("answers, outcome, calls", [
    ({"answer": RuntimeError("connection refused")}, "answer_error", 1),
    ({"answer": Reply("   ", 0.0, "gemma4-smart")}, "answer_error", 1),
    ({"answer": Reply(STRONG_ANSWER, 0.0, "gemma4-fast")}, "answer_error", 1),  # a fallback answered in its place
    ({"judge": RuntimeError("judge down")}, "judge_error", 2),
    ({"judge": Reply('{"rating": 4}', 0.0, "gemma4-fast")}, "judge_error", 2),
    ({"judge": Reply("The candidate is quite good overall.")}, "unparsed", 2),
    ({"judge": Reply('{"rating": 9}')}, "unparsed", 2),
])
async def test_a_failed_call_ends_the_sample_with_its_outcome(answers: dict[str, Any], outcome: str,
                                                              calls: int) -> None:
    host, complete = await one_sample(answers=answers)
    assert host.outcomes == [outcome] and len(complete.calls) == calls and host.records == []
    assert all(host.signals.latency.in_flight(t) == 0 for t in ("fast", "smart"))


async def test_a_call_that_takes_too_long_is_an_error() -> None:
    async def never(group: str, messages: Any, metadata: Any, params: Any) -> Reply:
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    host, _ = await one_sample(judged={"timeout_s": 0.05}, answers={"answer": never})
    assert host.outcomes == ["answer_error"]
    assert host.signals.latency.in_flight("smart") == 0


async def test_samples_cut_short_by_a_stop_are_counted_cancelled() -> None:
    host = FakeHost(make_settings())
    gate = asyncio.Event()

    async def stuck(group: str, messages: Any, metadata: Any, params: Any) -> Reply:
        await gate.wait()
        return Reply(STRONG_ANSWER, 0.0, group)

    sampler = Sampler(host, FakeComplete(host, {"answer": stuck}))
    sampler.offer(answered())
    await asyncio.sleep(0.01)
    await sampler.close(timeout_s=0.05)
    assert host.outcomes == ["cancelled"] and sampler.in_progress == 0
    assert host.signals.latency.in_flight("smart") == 0


async def test_every_outcome_named_here_is_one_of_the_outcomes() -> None:
    assert set(OUTCOMES) == {"labelled", "no_text", "tools", "redacted", "busy", "no_room", "budget",
                             "budget_unknown", "answer_error", "judge_error", "unparsed", "cancelled"}


# --------------------------------------------------------------------------- in flight, and what the calls say


async def test_the_calls_count_in_flight_on_their_tiers_while_they_run() -> None:
    host, complete = await one_sample()
    answer, verdict = complete.calls
    assert answer.in_flight == {"fast": 0, "smart": 1}
    assert verdict.in_flight == {"fast": 0, "smart": 1}  # the judge: the top local tier
    assert host.signals.latency.in_flight("smart") == 0  # and out again once done


async def test_a_judge_named_by_its_tier_counts_there() -> None:
    host, complete = await one_sample(judged={"judge": "fast"},
                                      answers={"judge": Reply('{"rating": 5}', 0.003, "gemma4-fast")})
    answer, verdict = complete.calls
    assert verdict.group == "gemma4-fast" and verdict.in_flight == {"fast": 1, "smart": 0}
    assert host.outcomes == ["labelled"] and host.charges == [("smart", 0.002), ("fast", 0.003)]
    assert host.reports[0][1].judge == "fast" and host.reports[0][1].judge_group == "gemma4-fast"


async def test_a_judge_named_by_a_tiers_model_group_counts_on_that_tier() -> None:
    host, complete = await one_sample(judged={"judge": "gemma4-fast"},
                                      answers={"judge": Reply('{"rating": 5}', 0.0, "gemma4-fast")})
    assert complete.calls[1].in_flight == {"fast": 1, "smart": 0}
    assert host.reports[0][1].judge == "fast"


async def test_a_judge_outside_the_ladder_counts_on_no_tier_and_needs_no_room() -> None:
    # Every tier full for samples: only the other tier's room matters, the judge's is unknown.
    tiers = {"fast": {"model_group": "gemma4-fast", "max_in_flight": 1}, "smart": {"model_group": "gemma4-smart"}}
    host = FakeHost(make_settings({"judge": "judge-model", "keep_free": 0}, tiers))
    host.signals.latency.begin("user-1", "fast")  # the fast tier is full
    complete = FakeComplete(host, {"judge": Reply('{"rating": 1}', 0.5, "judge-model")})
    sampler = Sampler(host, complete)
    sampler.offer(answered())
    await run(sampler)
    answer, verdict = complete.calls
    assert verdict.group == "judge-model" and verdict.in_flight == {"fast": 1, "smart": 0}
    assert host.outcomes == ["labelled"] and host.records[0].label.needs_strong is True
    assert host.charges == [("smart", 0.002)]  # no tier's budget pays for it
    sample = host.reports[0][1]
    assert sample.judge is None and sample.judge_group == "judge-model" and sample.judge_cost_usd == 0.5


async def test_the_calls_say_what_they_are_and_who_pays() -> None:
    host, complete = await one_sample(answered(call_id="parent-7"))
    answer, verdict = complete.calls
    assert answer.metadata[SAMPLE_KEY] == {"kind": "answer", "parent": "parent-7", "model_group": "gemma4-smart"}
    assert verdict.metadata[SAMPLE_KEY] == {"kind": "judge", "parent": "parent-7", "model_group": "gemma4-smart"}
    assert answer.metadata["tags"] == ["stratum:judged-sample", "stratum:answer"]
    assert verdict.metadata["tags"] == ["stratum:judged-sample", "stratum:judge"]
    for call in (answer, verdict):
        assert is_sample(call.metadata)
        assert call.metadata["user_api_key_alias"] == "stratum-learning"
        assert call.metadata["user_api_key_user_id"] == "stratum-learning"
        assert "user_api_key" not in call.metadata  # no key named: none charged
    assert answer.metadata is not verdict.metadata


def test_call_metadata_carries_the_identity_and_a_hashed_key() -> None:
    settings = make_settings({"identity": {"key_alias": "ops", "user_id": "robot", "team_id": "ml",
                                           "end_user": "nobody", "key": "sk-secret-123"}})
    metadata = call_metadata(settings, "judge", "c9", "gemma4-smart")
    hashed = hashlib.sha256(b"sk-secret-123").hexdigest()
    assert metadata["user_api_key"] == metadata["user_api_key_hash"] == hashed
    assert (metadata["user_api_key_alias"], metadata["user_api_key_user_id"], metadata["user_api_key_team_id"],
            metadata["user_api_key_end_user_id"]) == ("ops", "robot", "ml", "nobody")
    assert "sk-secret-123" not in json.dumps(metadata)
    # Each call gets its own dict: LiteLLM's router writes into it.
    again = call_metadata(settings, "judge", "c9", "gemma4-smart")
    assert again == metadata and again is not metadata and again["tags"] is not metadata["tags"]


def test_a_key_that_is_already_a_hash_is_passed_as_it_is() -> None:
    settings = make_settings({"identity": {"key": "0123abcd" * 8}})
    assert call_metadata(settings, "answer", "c", "gemma4-smart")["user_api_key_hash"] == "0123abcd" * 8


def test_a_key_from_the_environment_is_read_there(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings({"identity": {"key": "os.environ/STRATUM_TEST_SAMPLE_KEY"}})
    monkeypatch.setenv("STRATUM_TEST_SAMPLE_KEY", "sk-from-env")
    assert call_metadata(settings, "answer", "c", "gemma4-smart")["user_api_key_hash"] == \
        hashlib.sha256(b"sk-from-env").hexdigest()
    monkeypatch.delenv("STRATUM_TEST_SAMPLE_KEY")
    assert "user_api_key_hash" not in call_metadata(settings, "answer", "c", "gemma4-smart")


def test_is_sample_tells_sample_calls_apart() -> None:
    assert is_sample({SAMPLE_KEY: {}})
    assert not is_sample({"tags": ["x"]}) and not is_sample(None) and not is_sample("stratum_sample")


# --------------------------------------------------------------------------- which requests


async def test_a_success_event_delivered_twice_starts_one_sample() -> None:
    host = FakeHost(make_settings())
    complete = FakeComplete(host)
    sampler = Sampler(host, complete)
    sampler.offer(answered(call_id="twice"))
    sampler.offer(answered(call_id="twice"))
    await run(sampler)
    sampler.offer(answered(call_id="twice"))  # even once the first has ended
    await run(sampler)
    assert host.outcomes == ["labelled"] and len(complete.calls) == 2 and len(host.records) == 1


async def test_an_answer_of_a_tier_outside_the_judged_pair_is_not_sampled() -> None:
    tiers = {"fast": {"model_group": "gemma4-fast"}, "mid": {"model_group": "gemma4-mid", "entry_score": 0.5},
             "smart": {"model_group": "gemma4-smart", "entry_score": 0.8}}
    host, complete = await one_sample(answered("smart"), tiers=tiers)  # the pair: fast and mid
    assert host.reports == [] and complete.calls == [] and host.records == []


async def test_an_answer_of_the_overflow_tier_is_not_sampled() -> None:
    tiers = {"fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart"},
             "cloud": {"model_group": "cloud-model", "overflow": True, "budget": {"requests_per_hour": 10}}}
    host, complete = await one_sample(answered("cloud"), tiers=tiers)
    assert host.reports == [] and complete.calls == []


@pytest.mark.parametrize("share, draw, enabled, chosen", [
    (0.5, 0.49, True, True), (0.5, 0.5, True, False), (1.0, 0.999, True, True), (0.02, 0.3, True, False),
    (1.0, 0.0, False, False),
])
def test_a_share_of_requests_is_chosen(share: float, draw: float, enabled: bool, chosen: bool) -> None:
    host = FakeHost(make_settings({"share": share, "enabled": enabled}))
    assert Sampler(host, FakeComplete(host), draw=lambda: draw).chosen() is chosen


async def test_a_stopping_gateway_starts_no_more_samples_and_counts_them_cancelled() -> None:
    host = FakeHost(make_settings())
    complete = FakeComplete(host)
    sampler = Sampler(host, complete)
    sampler.stop()
    sampler.offer(answered(call_id="late"))
    await run(sampler)
    assert host.outcomes == ["cancelled"] and complete.calls == []
