"""RequestView: reads every part of a chat request, never raises, and stays bounded."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_litellm.scoring.view import (
    HISTORY_CAP,
    LAST_USER_HEAD,
    LAST_USER_TAIL,
    MAX_SCANNED_CHARS,
    SYSTEM_CAP,
    TOOLS_CAP,
    RequestView,
)

CHAT = {
    "model": "gemma4-auto",
    "messages": [
        {"role": "system", "content": "You are a careful assistant."},
        {"role": "user", "content": "What's the weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sunny, 21C"},
        {"role": "assistant", "content": "It is sunny and 21C."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "And what is in this picture?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,SECRETPIXELS"}},
                {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
            ],
        },
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ],
}


def test_reads_every_part_of_a_chat_request() -> None:
    v = RequestView.from_request(CHAT)
    assert v.last_user == "And what is in this picture?"
    assert v.system == "You are a careful assistant."
    assert "What's the weather in Paris?" in v.history
    assert "It is sunny and 21C." in v.history
    assert "get_weather" in v.tools and "Paris" in v.tools  # tool call name and arguments
    assert "sunny, 21C" in v.tools  # tool result
    assert "Current weather for a city" in v.tools and "city" in v.tools  # tool definition
    assert v.images == 2  # image and audio parts are counted...
    assert "SECRETPIXELS" not in v.last_user + v.history + v.tools  # ...never read
    assert v.turns == 6
    assert v.total_chars >= len("And what is in this picture?") + len("You are a careful assistant.")


def test_history_keeps_the_newest_turns_under_the_cap() -> None:
    messages = [{"role": "user" if i % 2 else "assistant", "content": f"turn-{i:04d} " + "x" * 200} for i in range(200)]
    messages.append({"role": "user", "content": "last"})
    v = RequestView.from_messages(messages)
    assert v.last_user == "last"
    assert len(v.history) <= HISTORY_CAP
    assert "turn-0199" in v.history and "turn-0000" not in v.history
    assert v.turns == 201


def test_plain_prompt_list_prompt_and_other_request_styles() -> None:
    assert RequestView.from_request({"prompt": "Say hi"}).last_user == "Say hi"
    assert "two" in RequestView.from_request({"prompt": ["one", "two"]}).last_user
    assert RequestView.from_prompt("hello").last_user == "hello"
    # Responses API input, Anthropic top-level system and tool blocks.
    v = RequestView.from_request({"input": "summarise this"})
    assert v.last_user == "summarise this"
    v = RequestView.from_request(
        {
            "system": "Be brief.",
            "messages": [
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "42 rows"}]},
                {"role": "user", "content": "now plot it"},
            ],
        }
    )
    assert v.system == "Be brief." and v.last_user == "now plot it" and "42 rows" in v.tools
    v = RequestView.from_request({"messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "q"}]})
    assert v.system == "rules"
    # Legacy functions and function_call.
    v = RequestView.from_request(
        {
            "messages": [{"role": "assistant", "function_call": {"name": "lookup", "arguments": "{}"}}, {"role": "user", "content": "go"}],
            "functions": [{"name": "lookup", "parameters": {"type": "object", "properties": {"term": {}}}}],
        }
    )
    assert "lookup" in v.tools and "term" in v.tools


@pytest.mark.parametrize(
    "body",
    [
        None,
        {},
        {"messages": None},
        {"messages": "just a string"},
        {"messages": 42},
        {"messages": [None, 1, "bare string", {"role": None}, {"role": "user", "content": None}]},
        {"messages": [{"role": "user", "content": [None, 3, 4.5, True, {"type": "text"}, {"type": "text", "text": None}]}]},
        {"messages": [{"role": "user", "content": {"nested": [[["deep"]]]}}]},
        {"messages": {"role": "user", "content": "single message object"}},
        {"tools": "not a list", "messages": []},
        {"prompt": 12345},
        "a string body",
        [1, 2, 3],
    ],
)
def test_odd_shapes_yield_a_valid_view(body: Any) -> None:
    v = RequestView.from_request(body)
    _assert_valid(v)


def test_junk_in_one_message_does_not_lose_the_others() -> None:
    body = {
        "messages": [
            {"type": [1], "role": {"x": 1}, "content": {"type": ["unhashable"]}},
            {"role": "system", "content": [{"type": ["x"], "text": "be brief"}]},
            {"role": "user", "content": [{"type": {"a": 1}, "text": "hello"}, 7, None]},
        ],
        "tools": [{"type": ["function"], "function": {"name": "lookup"}}],
    }
    v = RequestView.from_request(body)
    assert v.last_user.startswith("hello") and v.system == "be brief" and "lookup" in v.tools


def test_cyclic_and_deep_structures_are_bounded() -> None:
    loop: list[Any] = []
    loop.append(loop)
    deep: Any = "bottom"
    for _ in range(5000):
        deep = [deep]
    for content in (loop, deep):
        v = RequestView.from_request({"messages": [{"role": "user", "content": content}]})
        _assert_valid(v)


def test_huge_prompt_is_capped_with_head_and_tail() -> None:
    text = "HEAD" + "lorem ipsum " * 90_000 + "TAIL"
    assert len(text) > 1_000_000
    v = RequestView.from_request({"messages": [{"role": "system", "content": "s" * 100_000}, {"role": "user", "content": text}]})
    assert v.scanned_chars <= MAX_SCANNED_CHARS
    assert len(v.last_user) <= LAST_USER_HEAD + LAST_USER_TAIL + 3
    assert v.last_user.startswith("HEAD") and v.last_user.endswith("TAIL")
    assert len(v.system) <= SYSTEM_CAP
    assert v.last_user_length == len(text)
    assert v.total_chars >= len(text) + 100_000


def test_many_messages_and_huge_tools_are_bounded() -> None:
    messages = [{"role": "user", "content": "m" * 50} for _ in range(100_000)]
    tools = [{"type": "function", "function": {"name": f"f{i}", "description": "d" * 1000}} for i in range(2_000)]
    v = RequestView.from_request({"messages": messages, "tools": tools})
    assert v.scanned_chars <= MAX_SCANNED_CHARS
    assert len(v.tools) <= TOOLS_CAP
    assert v.turns == 100_000
    assert v.total_chars >= 100_000 * 50  # extrapolated beyond the messages sized exactly


def test_bare_view_defaults() -> None:
    v = RequestView()
    assert (v.last_user, v.system, v.history, v.tools, v.images, v.turns, v.total_chars) == ("", "", "", "", 0, 0, 0)
    assert v.scanned_chars == 0 and v.last_user_length == 0
    with pytest.raises(AttributeError):  # immutable
        v.last_user = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------- properties

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=40), st.binary(max_size=10))
junk = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(st.sampled_from(["role", "content", "type", "text", "tool_calls", "image_url", "name", "function", "arguments"]), st.text(max_size=8)), children, max_size=5),
    ),
    max_leaves=30,
)
roles = st.sampled_from(["user", "assistant", "system", "developer", "tool", "function", "USER", "", None, 3])
message = st.one_of(junk, st.fixed_dictionaries({"role": roles, "content": junk}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(junk, st.fixed_dictionaries({"messages": st.one_of(junk, st.lists(message, max_size=8)), "tools": junk})))
def test_from_request_never_raises_on_junk(body: Any) -> None:
    _assert_valid(RequestView.from_request(body))


@settings(max_examples=200)
@given(messages=st.one_of(junk, st.lists(message, max_size=8)), tools=junk)
def test_from_messages_never_raises_on_junk(messages: Any, tools: Any) -> None:
    _assert_valid(RequestView.from_messages(messages, tools))


@settings(max_examples=200)
@given(text=st.text())
def test_from_prompt_keeps_any_text(text: str) -> None:
    v = RequestView.from_prompt(text)
    _assert_valid(v)
    if len(text) <= LAST_USER_HEAD + LAST_USER_TAIL:
        assert v.last_user == text


def _assert_valid(v: RequestView) -> None:
    assert isinstance(v, RequestView)
    for name in ("last_user", "system", "history", "tools"):
        assert isinstance(getattr(v, name), str)
    for name in ("images", "turns", "total_chars"):
        assert isinstance(getattr(v, name), int) and getattr(v, name) >= 0
    assert v.scanned_chars <= MAX_SCANNED_CHARS


plain_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "assistant", "system", "developer"]), "content": st.text(max_size=4000)}
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(plain_message, min_size=1, max_size=12))
def test_fast_path_for_plain_chats_matches_the_general_reader(messages: list[dict[str, str]]) -> None:
    from stratum_litellm.scoring import view as request_view

    body = {"model": "m", "messages": messages}
    assert request_view._plain_chat(messages) is not None
    assert RequestView.from_request(body) == request_view._from_request_general(body)


@pytest.mark.parametrize("size", [0, 1, LAST_USER_HEAD + LAST_USER_TAIL, LAST_USER_HEAD + LAST_USER_TAIL + 1, 50_000])
@pytest.mark.parametrize("extra", [{}, {"name": "ann"}, {"tool_calls": None}])
def test_a_single_user_turn_reads_as_the_general_reader_reads_it(size: int, extra: dict) -> None:
    # One user message is the most common request, and has a shortcut of its own.
    from stratum_litellm.scoring import view as request_view

    text = "".join(chr(0x61 + i % 26) for i in range(size))
    body = {"model": "m", "messages": [{"role": "user", "content": text, **extra}]}
    view = RequestView.from_request(body)
    assert view == request_view._from_request_general(body)
    assert (view.turns, view.total_chars, view.last_user_length) == (1, size, size)


# What a request can add beyond the bounds is never read: a body made 10x longer in any
# dimension (parts, messages, tools, tool calls) gives the same text to score, so its
# routing work cannot grow with it (benchmarks/gateway/reliability.py measures the time).
_GROWABLE = st.sampled_from(["parts", "image_parts", "messages", "tools", "tool_calls"])


def _body(shape: str, n: int, word: str) -> dict[str, Any]:
    if shape == "parts":
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": word}] * n}]}
    if shape == "image_parts":
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": word}]
                              + [{"type": "image_url", "image_url": {"url": "data:,"}}] * n}]}
    if shape == "messages":
        return {"messages": [{"role": "assistant" if i % 2 else "user", "content": f"{word} {i % 10}"} for i in range(n)]
                + [{"role": "user", "content": word}]}
    if shape == "tools":
        return {"messages": [{"role": "user", "content": word}],
                "tools": [{"type": "function", "function": {"name": f"{word}_{i % 10}", "parameters": {
                    "type": "object", "properties": {"q": {"type": "string"}}}}} for i in range(n)]}
    calls = [{"id": str(i), "type": "function", "function": {"name": word, "arguments": "{}"}} for i in range(n)]
    return {"messages": [{"role": "assistant", "content": None, "tool_calls": calls}, {"role": "user", "content": word}]}


@settings(max_examples=40, deadline=None)
@given(shape=_GROWABLE, word=st.text(alphabet="abcxyz", min_size=1, max_size=12))
def test_growing_a_body_past_its_bounds_adds_nothing_to_read(shape: str, word: str) -> None:
    big, bigger = (RequestView.from_request(_body(shape, n, word)) for n in (1_000, 10_000))
    text = lambda v: (v.last_user, v.system, v.history, v.tools)  # noqa: E731
    assert text(big) == text(bigger)
    assert bigger.scanned_chars <= MAX_SCANNED_CHARS
    if shape == "image_parts":
        assert big.images == bigger.images > 0  # counted up to a bound, never read
