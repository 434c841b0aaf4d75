"""The judge: its grade read back from whatever it wrote, and what it is shown (the
conversation's end, the reference and the candidate, each cut to the same length)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_litellm.learning.judge import ANSWER_CHARS, CONVERSATION_CHARS, INSTRUCTIONS, RESPONSE_FORMAT, grade, messages

# --------------------------------------------------------------------------- the grade


@pytest.mark.parametrize("reply, expected", [
    ('{"rating": 4, "reason": "complete and correct"}', 4),
    ('  {"rating": 1, "reason": "off topic"}\n', 1),
    ('Here is my verdict:\n```json\n{"rating": 2, "reason": "misses the second part"}\n```\nHope it helps.', 2),
    ('{"reason": "uses {braces} inside", "rating": 3}', 3),
    ('{"rating": "5", "reason": "as good"}', 5),
    ('{"rating": " 3 "}', 3),
    ("Rating: 4", 4),
    ("rating=2", 2),
    ("The candidate is fine.\nRATING: 5\n", 5),
    ('"rating": "3"', 3),
    ("Rating: [[4]]", 4),
    ('{"rating": 9, "reason": "x"} but really rating: 3', None),  # a JSON with a rating decides: 9 is no grade
    ('{"rating": 3.5, "reason": "x"}', None),  # nor is 3.5 (the JSON is read, not its first digit)
    ('{"rating": 4.0, "reason": "x"}', 4),
])
def test_a_grade_is_read_from_json_or_from_a_rating_it_wrote(reply: str, expected: int | None) -> None:
    assert grade(reply) == expected


@pytest.mark.parametrize("reply", [
    "", "   ", "I think the candidate is quite good.", "4", "{}", '{"rating": null}',
    '{"rating": 0}', '{"rating": 6}', '{"rating": -3}', '{"rating": true}', '{"rating": "excellent"}',
    "Rating: 0", "Rating: 7", "Rating: 10", "rating = 45", '{"score": 4}', "[1, 2, 3]"
])
def test_no_grade_in_garbage_or_out_of_range(reply: str) -> None:
    assert grade(reply) is None


@settings(max_examples=300)
@given(reply=st.text(max_size=300))
def test_any_reply_gives_a_grade_from_1_to_5_or_none(reply: str) -> None:
    found = grade(reply)
    assert found is None or (type(found) is int and 1 <= found <= 5)


@settings(max_examples=200)
@given(rating=st.integers(1, 5), reason=st.text(max_size=200), before=st.text(alphabet="abc .\n", max_size=50),
       after=st.text(alphabet="abc .\n", max_size=50))
def test_the_structured_verdict_is_always_read(rating: int, reason: str, before: str, after: str) -> None:
    reply = before + json.dumps({"rating": rating, "reason": reason}) + after
    assert grade(reply) == rating


def test_the_response_format_asks_for_that_verdict() -> None:
    schema = RESPONSE_FORMAT["json_schema"]["schema"]
    assert schema["properties"]["rating"]["enum"] == [1, 2, 3, 4, 5]
    assert schema["required"] == ["rating", "reason"]
    assert '{"rating": <1-5>' in INSTRUCTIONS


# --------------------------------------------------------------------------- what the judge reads


def test_the_judge_reads_the_conversation_the_reference_and_the_candidate() -> None:
    conversation = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]
    found = messages(conversation, reference="It is 4, because 2 + 2 = 4.", candidate="5")
    assert [m["role"] for m in found] == ["system", "user"]
    assert found[0]["content"] == INSTRUCTIONS
    body = found[1]["content"]
    assert "system: Be brief.\nuser: What is 2 + 2?" in body
    reference_at, candidate_at = body.index("[Reference answer]"), body.index("[Candidate answer]")
    assert body.index("It is 4, because 2 + 2 = 4.") > reference_at
    assert body[candidate_at:].split("\n")[1] == "5"
    assert reference_at < candidate_at


def test_both_answers_are_cut_at_the_same_length() -> None:
    reference = "R" * (ANSWER_CHARS - 1) + "<end of reference>"
    candidate = "C" * ANSWER_CHARS
    body = messages([{"role": "user", "content": "Tell me everything."}], reference, candidate)[1]["content"]
    assert "<end of reference>" not in body
    assert "R" * (ANSWER_CHARS - 1) + "<" + " …" in body
    assert "C" * ANSWER_CHARS in body and "C" * (ANSWER_CHARS + 1) not in body
    # An answer at the limit is shown whole, without a mark.
    assert "C" * ANSWER_CHARS + " …" not in body


def test_a_long_conversation_keeps_its_end() -> None:
    conversation = [{"role": "user", "content": "<first question> " + "x" * 4000},
                    {"role": "assistant", "content": "y" * 4000},
                    {"role": "user", "content": "and now the <last question>?"}]
    body = messages(conversation, "ref", "cand")[1]["content"]
    shown = body.split("[Conversation]\n", 1)[1].split("\n\n[Reference answer]", 1)[0]
    assert "<first question>" not in shown
    assert shown.endswith("user: and now the <last question>?")
    assert shown.startswith("…") and len(shown) == CONVERSATION_CHARS + 1


def test_a_short_conversation_is_shown_whole() -> None:
    conversation = [{"role": "user", "content": "x" * (CONVERSATION_CHARS - len("user: "))}]
    body = messages(conversation, "ref", "cand")[1]["content"]
    shown = body.split("[Conversation]\n", 1)[1].split("\n\n[Reference answer]", 1)[0]
    assert shown == "user: " + "x" * (CONVERSATION_CHARS - len("user: "))


def test_content_parts_are_read_as_their_text_and_media_are_named() -> None:
    conversation = [
        {"role": "user", "content": [{"type": "text", "text": "What is in"}, {"type": "image_url", "image_url": {"url": "x"}},
                                     "this picture?", {"type": "text", "text": 3}, 7]},
        {"role": "assistant", "content": None},
        {"content": 12},
    ]
    body = messages(conversation, "ref", "cand")[1]["content"]
    assert "user: What is in [image_url] this picture? [text]" in body
    assert "assistant: \n" in body
    assert "user: 12" in body  # a message without a role is the user's


@settings(max_examples=100)
@given(conversation=st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]),
                                                    "content": st.one_of(st.text(max_size=3000), st.none(),
                                                                         st.lists(st.text(max_size=50), max_size=3))}),
                             max_size=8),
       reference=st.text(max_size=5000), candidate=st.text(max_size=5000))
def test_what_the_judge_reads_is_bounded(conversation: list[dict], reference: str, candidate: str) -> None:
    body = messages(conversation, reference, candidate)[1]["content"]
    fixed = len("[Conversation]\n\n\n[Reference answer]\n\n\n[Candidate answer]\n\n\nGrade the candidate answer (JSON only).")
    assert len(body) <= fixed + CONVERSATION_CHARS + 1 + 2 * (ANSWER_CHARS + 2)
