"""Open WebUI's ratings as labels: the export read (the newest rating per answer, nothing
else), and each rating joined to the router's decision for that answer."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_litellm.learning.example import Example
from stratum_litellm.learning.openwebui import REGENERATION_WEIGHT, Rating, labels_of, parse_ratings
from stratum_litellm.learning.store import Decision

NOW = 1_800_000_000.0


def feedback(message_id: Any, rating: Any, updated: Any = 100, kind: str = "rating", chat: Any = "chat-1",
             **extra: Any) -> dict[str, Any]:
    """One item of /api/v1/evaluations/feedbacks/all/export, as Open WebUI writes it."""
    meta = {"chat_id": chat, "model_id": "gemma4-auto"}
    if message_id is not None:
        meta["message_id"] = message_id
    return {"id": f"fb-{message_id}-{updated}", "type": kind, "data": {"rating": rating, "model_id": "gemma4-auto"},
            "meta": meta, "updated_at": updated, "created_at": updated, **extra}


def decision(message_id: str, first_tier: bool = True, chat: str | None = "chat-1", user_message: str | None = "u-1",
             created: float = NOW - 100, prompt: str = "Prove that there are infinitely many primes.") -> Decision:
    return Decision(message_id, "fast" if first_tier else "smart", first_tier, Example.of_prompt(prompt), chat,
                    user_message, 0.42, "default", created)


# --------------------------------------------------------------------------- reading the export


def test_the_newest_rating_of_each_answer_is_kept() -> None:
    found = parse_ratings([feedback("m1", 1, updated=100), feedback("m1", -1, updated=300), feedback("m1", 1, updated=200),
                           feedback("m2", -1, updated=50)])
    assert {r.message_id: (r.rating, r.updated_at) for r in found} == {"m1": (-1, 300.0), "m2": (-1, 50.0)}


@pytest.mark.parametrize("raw, thumb", [(1, 1), (-1, -1), ("1", 1), ("-1", -1), ("+1", 1), (" -1 ", -1), (10, 1),
                                        (-7, -1)])
def test_ratings_may_be_numbers_or_strings(raw: Any, thumb: int) -> None:
    (found,) = parse_ratings([feedback("m1", raw)])
    assert found.rating == thumb and found.chat_id == "chat-1"


@pytest.mark.parametrize("item", [
    feedback("m1", 1, kind="arena"),
    feedback("m1", 1, kind="comment"),
    feedback(None, 1),
    feedback("", 1),
    feedback(42, 1),
    feedback("m1", 0),
    feedback("m1", None),
    feedback("m1", "great"),
    feedback("m1", True),
    feedback("m1", 1.0),
    {"type": "rating", "data": "thumbs up", "meta": {"message_id": "m1"}},
    {"type": "rating", "data": {"rating": 1}},
    "a string",
    None,
])
def test_anything_but_a_thumb_on_a_message_is_skipped(item: Any) -> None:
    assert parse_ratings([item, feedback("kept", -1)]) == [Rating("kept", -1, "chat-1", 100.0)]


def test_an_export_that_is_not_a_list_is_refused() -> None:
    with pytest.raises(ValueError, match="expected a list of feedbacks, got dict"):
        parse_ratings({"detail": "Not authenticated"})


def test_a_rating_without_a_time_or_chat_still_counts() -> None:
    item = feedback("m1", -1, chat=None)
    del item["updated_at"], item["created_at"]
    assert parse_ratings([item]) == [Rating("m1", -1, None, 0.0)]


@settings(max_examples=200)
@given(items=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([1, -1, "1", "-1"]),
                                st.integers(0, 1000)), max_size=20))
def test_one_rating_per_answer_the_newest(items: list[tuple[str, Any, int]]) -> None:
    found = parse_ratings([feedback(m, r, updated=t) for m, r, t in items])
    assert sorted(r.message_id for r in found) == sorted({m for m, _, _ in items})
    for rating in found:
        assert rating.updated_at == max(t for m, _, t in items if m == rating.message_id)


# --------------------------------------------------------------------------- joined to decisions


def test_a_thumbs_down_on_a_first_tier_answer_needs_the_strong_tier() -> None:
    result = labels_of([Rating("m1", -1, "chat-1", NOW - 10)], [decision("m1")], now=NOW)
    (label,) = result.labels
    assert (label.needs_strong, label.weight, label.source, label.ref) == (True, 1.0, "openwebui", "openwebui:m1")
    assert (label.tier, label.score, label.profile, label.created) == ("fast", 0.42, "default", NOW - 10)
    assert label.example == Example.of_prompt("Prove that there are infinitely many primes.")
    assert (result.ratings, result.unjoined, result.stronger_tier, result.regenerations) == (1, 0, 0, 0)


def test_a_thumbs_up_on_a_first_tier_answer_means_it_was_enough() -> None:
    (label,) = labels_of([Rating("m1", 1)], [decision("m1")], now=NOW).labels
    assert label.needs_strong is False and label.weight == 1.0 and label.source == "openwebui"
    assert label.created == NOW  # a rating without a time is dated now


def test_a_rating_of_a_stronger_tiers_answer_makes_no_label() -> None:
    result = labels_of([Rating("m1", -1), Rating("m2", 1)], [decision("m1", first_tier=False),
                                                             decision("m2", first_tier=False)], now=NOW)
    assert result.labels == [] and result.stronger_tier == 2


def test_a_rating_of_an_unknown_answer_is_counted_unjoined() -> None:
    result = labels_of([Rating("gone", -1), Rating("m1", 1)], [decision("m1")], now=NOW)
    assert result.unjoined == 1 and [l.ref for l in result.labels] == ["openwebui:m1"]


def test_a_regenerated_first_tier_answer_is_a_weak_needs_strong() -> None:
    answers = [decision("first", created=NOW - 300), decision("second", created=NOW - 200, first_tier=False)]
    result = labels_of([], answers, now=NOW)
    (label,) = result.labels
    assert (label.needs_strong, label.weight, label.source, label.ref) == (
        True, REGENERATION_WEIGHT, "regeneration", "openwebui:first")
    assert REGENERATION_WEIGHT == 0.5
    assert label.created == NOW and result.regenerations == 1


def test_every_answer_but_the_newest_of_a_turn_was_regenerated() -> None:
    answers = [decision("c", created=NOW - 100), decision("a", created=NOW - 300), decision("b", created=NOW - 200),
               decision("other-turn", user_message="u-2", created=NOW - 400)]
    result = labels_of([], answers, now=NOW)
    assert sorted(l.ref for l in result.labels) == ["openwebui:a", "openwebui:b"]


def test_a_regenerated_answer_of_a_stronger_tier_makes_no_label() -> None:
    answers = [decision("first", first_tier=False, created=NOW - 300), decision("second", created=NOW - 200)]
    assert labels_of([], answers, now=NOW).labels == []


def test_the_rating_of_a_regenerated_answer_wins() -> None:
    answers = [decision("first", created=NOW - 300), decision("second", created=NOW - 200)]
    result = labels_of([Rating("first", 1, "chat-1", NOW - 250)], answers, now=NOW)
    (label,) = result.labels
    assert (label.ref, label.needs_strong, label.weight, label.source) == ("openwebui:first", False, 1.0, "openwebui")
    assert result.regenerations == 0


def test_answers_of_other_chats_or_without_ids_are_not_regenerations() -> None:
    answers = [decision("a", chat="chat-1", created=NOW - 300), decision("b", chat="chat-2", created=NOW - 200),
               decision("c", chat=None, created=NOW - 100), decision("d", chat=None, created=NOW - 50),
               decision("e", user_message=None, created=NOW - 40), decision("f", user_message=None, created=NOW - 30)]
    assert labels_of([], answers, now=NOW).labels == []


def test_one_label_per_answer() -> None:
    answers = [decision("a", created=NOW - 300), decision("b", created=NOW - 200), decision("c", created=NOW - 100)]
    ratings = [Rating("a", -1), Rating("b", 1), Rating("c", -1), Rating("zzz", 1)]
    result = labels_of(ratings, answers, now=NOW)
    refs = [l.ref for l in result.labels]
    assert len(refs) == len(set(refs)) == 3
