"""Labels files: JSON lines of a prompt (or chat messages) and whether the first tier's answer
was enough. A bad line is refused naming the file, the line and what was expected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_litellm.learning.example import Example
from stratum_litellm.learning.labels import LabelsError, read_file

EXPECTED = 'expected a JSON object with "prompt" (a string) or "messages" (a list of chat messages), and "needs_strong"'


def lines(tmp_path: Path, *records: Any, name: str = "labels.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def refusal(path: Path) -> str:
    with pytest.raises(LabelsError) as caught:
        list(read_file(path))
    return str(caught.value)


GOOD = {"prompt": "What is 2 + 2?", "needs_strong": False}


@pytest.mark.parametrize("bad, why", [
    ("{not json", "not JSON"),
    ('{"prompt": "x", "needs_strong": true', "not JSON"),
    ("[1, 2]", "a JSON list, not an object"),
    ('"just a string"', "a JSON str, not an object"),
    ("42", "a JSON int, not an object"),
    ({"prompt": "x"}, 'no "needs_strong"'),
    ({"prompt": "x", "needs_strong": "yes"}, '"needs_strong" is "yes", not true or false'),
    ({"prompt": "x", "needs_strong": 1}, '"needs_strong" is 1, not true or false'),
    ({"prompt": "x", "needs_strong": None}, '"needs_strong" is null, not true or false'),
    ({"prompt": "x", "needs_strong": True, "weight": 0}, '"weight" is 0, not a positive number'),
    ({"prompt": "x", "needs_strong": True, "weight": -1.5}, '"weight" is -1.5, not a positive number'),
    ({"prompt": "x", "needs_strong": True, "weight": "2"}, '"weight" is "2", not a positive number'),
    ({"prompt": "x", "needs_strong": True, "weight": True}, '"weight" is true, not a positive number'),
    ({"needs_strong": True}, 'no "prompt" string and no "messages" list'),
    ({"prompt": 3, "needs_strong": True}, 'no "prompt" string and no "messages" list'),
    ({"messages": [], "needs_strong": True}, '"messages" is not a non-empty list'),
    ({"messages": "hi", "needs_strong": True}, '"messages" is not a non-empty list'),
])
def test_a_bad_line_is_refused_naming_the_file_the_line_and_what_was_expected(tmp_path: Path, bad: Any, why: str) -> None:
    path = lines(tmp_path, GOOD, "", GOOD, bad, GOOD)  # the bad one is on line 4 (line 2 is blank)
    message = refusal(path)
    assert message.startswith(f"{path}:4: ")
    assert why in message
    assert EXPECTED in message


def test_an_infinite_weight_is_refused(tmp_path: Path) -> None:
    # Python's JSON reader accepts Infinity.
    message = refusal(lines(tmp_path, '{"prompt": "x", "needs_strong": true, "weight": Infinity}'))
    assert f"{tmp_path / 'labels.jsonl'}:1: " in message and "not a positive number" in message


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    message = refusal(tmp_path / "nowhere.jsonl")
    assert str(tmp_path / "nowhere.jsonl") in message and "cannot read" in message


def test_the_labels_of_a_file_in_order_with_their_line_as_ref(tmp_path: Path) -> None:
    path = lines(tmp_path,
                 {"prompt": "Prove that the square root of 2 is irrational.", "needs_strong": True},
                 "",
                 "   ",
                 {"messages": [{"role": "user", "content": "hello"}], "needs_strong": False, "weight": 0.5})
    found = list(read_file(path))
    assert [label.needs_strong for label in found] == [True, False]
    assert [label.weight for label in found] == [1.0, 0.5]
    assert [label.ref for label in found] == [f"{path}:1", f"{path}:4"]  # blank lines skipped, still counted
    assert {label.source for label in found} == {"file"}
    assert found[0].example == Example.of_prompt("Prove that the square root of 2 is irrational.", keep_text=True)
    assert found[1].example.text == "hello"


def test_text_is_dropped_when_not_kept(tmp_path: Path) -> None:
    path = lines(tmp_path, {"prompt": "keep me out", "needs_strong": True})
    (label,) = read_file(path, keep_text=False)
    assert label.example.text is None
    assert label.example == Example.of_prompt("keep me out")


def test_extra_fields_are_ignored(tmp_path: Path) -> None:
    plain = list(read_file(lines(tmp_path, {"prompt": "Summarise this report.", "needs_strong": True}, name="a.jsonl")))
    extra = list(read_file(lines(tmp_path, {"id": 17, "prompt": "Summarise this report.", "needs_strong": True,
                                            "source": "judge", "grade": 2, "note": {"deep": [1, 2]}}, name="b.jsonl")))
    assert [(l.example, l.needs_strong, l.weight, l.source) for l in extra] == \
        [(l.example, l.needs_strong, l.weight, l.source) for l in plain]


def test_messages_count_earlier_turns_and_tools(tmp_path: Path) -> None:
    conversation = [{"role": "system", "content": "You are a careful SQL expert."},
                    {"role": "user", "content": "SELECT name FROM users WHERE age > 30;"},
                    {"role": "assistant", "content": "That lists users over 30."},
                    {"role": "user", "content": "now fix it"}]
    tools = [{"type": "function", "function": {"name": "run_sql", "parameters": {"type": "object"}}}]
    (label,) = read_file(lines(tmp_path, {"messages": conversation, "tools": tools, "needs_strong": True}))
    assert label.example == Example.of_request({"messages": conversation, "tools": tools}, keep_text=True)
    assert label.example.text == "now fix it"  # the last user turn is what the learned part reads
    assert label.example != Example.of_prompt("now fix it", keep_text=True)  # the rest counts too


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=500))
def test_a_messages_line_and_a_prompt_line_give_the_same_example_for_one_user_turn(text: str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = lines(Path(folder),
                     {"prompt": text, "needs_strong": True},
                     {"messages": [{"role": "user", "content": text}], "needs_strong": True})
        prompt, messages = read_file(path)
    assert prompt.example == messages.example
