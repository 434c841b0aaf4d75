"""A bounded, typed view of one chat request: the text a router may read, and its sizes.

The proxy hands the plugin whatever JSON body a client sent, so this module trusts
nothing: any shape (no messages, ``None`` content, numbers, nested junk, a list of a
million messages) yields a valid :class:`RequestView` and never raises. The work done is
bounded too: only the newest messages are read in full, each text field is capped
(the last user turn keeps a head and a tail window), and nested structures are walked
with a node and character budget. ``total_chars`` still reports the size of the whole
request, so the length of a huge prompt is not lost by the capping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from . import walk

__all__ = [
    "HISTORY_CAP",
    "LAST_USER_HEAD",
    "LAST_USER_TAIL",
    "MAX_SCANNED_CHARS",
    "RequestView",
    "SYSTEM_CAP",
    "TOOLS_CAP",
]

# Caps on what a view keeps (characters). Their sum bounds the work of every scorer that
# reads a view, whatever the request size: a 1 MB prompt costs about what 20k chars do.
LAST_USER_HEAD = 8_000
LAST_USER_TAIL = 4_000
SYSTEM_CAP = 3_000
HISTORY_CAP = 3_000
TOOLS_CAP = 2_000
_ELISION = "\n…\n"  # joins the head and tail windows of a capped last user turn
MAX_SCANNED_CHARS = LAST_USER_HEAD + LAST_USER_TAIL + len(_ELISION) + SYSTEM_CAP + HISTORY_CAP + TOOLS_CAP

# Work bounds for walking the request body: together they keep a decision under a
# millisecond whatever the shape (10,000 messages, parts, tools or tool calls:
# benchmarks/routing/request_shapes.py, RESULTS-routing.md).
_MAX_DETAILED_MESSAGES = 32  # newest messages read in full (plus leading system messages)
_MAX_LEADING_SYSTEM = 4  # system/developer messages read from the start of the list
_MAX_SIZED_MESSAGES = 128  # messages whose size is summed; the rest is extrapolated
_MAX_NODES = 300  # nested values visited per request, over every structure walked

_SYSTEM_ROLES = frozenset({"system", "developer"})
_TOOL_ROLES = frozenset({"tool", "function", "ipython"})
class RequestView(NamedTuple):
    """What the router reads of a request: bounded text fields and whole-request sizes.

    Immutable; a named tuple because one is built per request, several times faster than a
    frozen dataclass.
    """

    last_user: str = ""  # text of the last user turn (text parts of multimodal content)
    system: str = ""  # system / developer prompt text
    history: str = ""  # earlier user and assistant turns, joined, newest kept (bounded)
    tools: str = ""  # tool definitions, tool call names + arguments, tool results (bounded)
    images: int = 0  # number of image/audio/file parts (counted, not read)
    turns: int = 0  # number of messages
    total_chars: int = 0  # characters in the whole request before any capping
    last_user_chars: int = -1  # length of the last user turn before capping (-1: len(last_user))
    audio: int = 0  # of the media parts, how many are audio
    files: int = 0  # of the media parts, how many are files or documents
    output_tokens: int = 0  # the answer's length the request asks for (max_tokens; 0: not said)

    @property
    def last_user_length(self) -> int:
        """Characters of the last user turn before capping."""
        return self.last_user_chars if self.last_user_chars >= 0 else len(self.last_user)

    @property
    def scanned_chars(self) -> int:
        """Characters a scorer reads from this view; at most MAX_SCANNED_CHARS for views built here."""
        return len(self.last_user) + len(self.system) + len(self.history) + len(self.tools)

    @classmethod
    def from_request(cls, data: Mapping[str, Any]) -> RequestView:
        """View of an OpenAI-style body (``messages``, ``tools``, ``functions``) or a ``prompt``.

        Also reads a top-level ``system`` (Anthropic style) and ``input`` (Responses style).
        Never raises: anything unreadable is skipped.
        """
        try:
            if type(data) is dict:  # the common case first, without the general walker
                messages = data.get("messages")
                if (
                    type(messages) is list
                    and 0 < len(messages) <= _MAX_DETAILED_MESSAGES
                    and data.get("system") is None
                    and not data.get("tools")
                    and not data.get("functions")
                ):
                    view = _plain_chat(messages)
                    if view is not None:
                        return _with_output(view, data)
            return _with_output(_from_request_general(data), data)
        except Exception:  # noqa: BLE001 - a router must never fail a request over its shape
            return cls()

    @classmethod
    def from_messages(cls, messages: Any, tools: Any = None) -> RequestView:
        """View of a chat message list (and optional tool definitions). Never raises."""
        try:
            builder = _Builder()
            builder.add_messages(messages)
            builder.add_tool_definitions(tools)
            return builder.build()
        except Exception:  # noqa: BLE001
            return cls()

    @classmethod
    def from_prompt(cls, prompt: str) -> RequestView:
        """View of a bare prompt, read as a single user turn. Never raises."""
        try:
            builder = _Builder()
            builder.add_prompt(prompt)
            return builder.build()
        except Exception:  # noqa: BLE001
            return cls()


# --------------------------------------------------------------------------- building


def _with_output(view: RequestView, data: Any) -> RequestView:
    """The view with the answer's length the body asks for (OpenAI's ``max_tokens`` or
    ``max_completion_tokens``, the Responses API's ``max_output_tokens``)."""
    if not walk.is_map(data):
        return view
    for key in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        value = data.get(key)
        if type(value) is int and value > 0:
            return view._replace(output_tokens=value)
    return view


_PLAIN_ROLES = frozenset({"user", "assistant", "system", "developer"})


def _plain_chat(messages: list[Any]) -> RequestView | None:
    """The common case, without the general walker: a short list of plain-text messages.

    Returns None for anything else (tool calls, content parts, odd roles), which the
    general builder then handles; both give the same view (a test checks it).
    """
    if len(messages) == 1:  # a single user turn, the most common request: nothing else to sort
        message = messages[0]
        if (type(message) is dict and message.get("role") == "user" and type(last := message.get("content")) is str
                and message.get("tool_calls") is None and message.get("function_call") is None):
            full_len = len(last)
            if full_len > LAST_USER_HEAD + LAST_USER_TAIL:
                last = last[:LAST_USER_HEAD] + _ELISION + last[-LAST_USER_TAIL:]
            return RequestView(last, "", "", "", 0, 1, full_len, full_len)
    last_index = -1
    total = 0
    for i, message in enumerate(messages):
        if type(message) is not dict:
            return None
        role = message.get("role")
        content = message.get("content")
        if type(content) is not str or type(role) is not str or role not in _PLAIN_ROLES:
            return None
        if message.get("tool_calls") is not None or message.get("function_call") is not None:
            return None
        total += len(content)
        if role == "user":
            last_index = i
    system: list[str] = []
    system_len = 0
    history: list[str] = []
    history_len = 0
    for i in range(len(messages) - 1, -1, -1):  # newest first, as the builder reads them
        if i == last_index:
            continue
        message = messages[i]
        content = message["content"]
        if not content:
            continue
        if message["role"] in ("system", "developer"):
            room = SYSTEM_CAP - system_len
            if room > 0:
                system.insert(0, content[:room])
                system_len += min(len(content), room) + 1
        else:
            room = HISTORY_CAP - history_len
            if room > 0:
                text = content[-room:]
                history.append(text)
                history_len += len(text) + 1
    last = messages[last_index]["content"] if last_index >= 0 else ""
    full_len = len(last)
    if full_len > LAST_USER_HEAD + LAST_USER_TAIL:
        last = last[:LAST_USER_HEAD] + _ELISION + last[-LAST_USER_TAIL:]
    return RequestView(
        last,
        "\n".join(system)[:SYSTEM_CAP] if system else "",
        "\n".join(reversed(history))[-HISTORY_CAP:] if history else "",
        "",
        0,
        len(messages),
        total if total > full_len else full_len,
        full_len,
    )


def _from_request_general(data: Any) -> RequestView:
    builder = _Builder()
    if not walk.is_map(data):
        builder.add_prompt(data)
        return builder.build()
    system = data.get("system")
    if system is not None:  # Anthropic-style top-level system prompt
        builder.add_system_content(system)
        builder.total_chars += len(system) if isinstance(system, str) else 0
    messages = data.get("messages")
    if messages is not None:
        builder.add_messages(messages)
    elif data.get("input") is not None:  # Responses API: a string or a list of items
        builder.add_messages(data.get("input"))
    elif data.get("prompt") is not None:
        builder.add_prompt(data.get("prompt"))
    builder.add_tool_definitions(data.get("tools"))
    builder.add_tool_definitions(data.get("functions"))
    return builder.build()


class _Builder:
    """Accumulates the pieces of a view under the caps; every method tolerates any input."""

    __slots__ = ("_history", "_history_len", "_last_user", "_nodes", "_system", "_system_len", "_tools",
                 "_tools_len", "images", "total_chars", "turns")

    def __init__(self) -> None:
        self._last_user: str | None = None
        self._system: list[str] = []
        self._system_len = 0
        self._history: list[str] = []  # newest first while collecting
        self._history_len = 0
        self._tools: list[str] = []
        self._tools_len = 0
        self.images = 0  # media parts met, packed (see walk.AUDIO): any, audio, files
        self.turns = 0
        self.total_chars = 0
        self._nodes = [_MAX_NODES]  # shared by every walk of this request

    # -- public adders

    def add_prompt(self, prompt: Any) -> None:
        if isinstance(prompt, str):
            text = prompt
        elif isinstance(prompt, (list, tuple)):  # text completion accepts a list of prompts
            parts: list[str] = []
            walk.collect_text(prompt, parts, self._nodes, LAST_USER_HEAD + LAST_USER_TAIL, 0)
            text = "\n".join(parts)
        elif prompt is None:
            return
        else:
            text = walk.scalar_text(prompt)
        self.turns += 1
        self.total_chars += len(text)
        self._last_user = text

    def add_messages(self, messages: Any) -> None:
        if walk.is_map(messages):  # a single message object
            messages = [messages]
        if not isinstance(messages, (list, tuple)):
            if messages is not None:
                self.add_prompt(messages if isinstance(messages, str) else walk.scalar_text(messages))
            return
        n = len(messages)
        self.turns += n
        self._size_messages(messages)
        last_user_index = -1
        start = max(0, n - _MAX_DETAILED_MESSAGES)
        for i in range(n - 1, start - 1, -1):
            if walk.role_of(messages[i]) == "user":
                last_user_index = i
                break
        # Newest first, so the history cap keeps the most recent turns.
        for i in range(n - 1, start - 1, -1):
            self._add_message(messages[i], is_last_user=i == last_user_index)
        # Leading system prompts live at the start of long conversations (inserted first).
        for i in range(min(start, _MAX_LEADING_SYSTEM) - 1, -1, -1):
            if walk.role_of(messages[i]) in _SYSTEM_ROLES:
                self.add_system_content(walk.field(messages[i], "content"))

    def add_system_content(self, content: Any) -> None:
        room = SYSTEM_CAP - self._system_len
        if room <= 0:
            self.images += walk.count_media(content)
            return
        text = self._text_of(content, room)
        if text:
            self._system.insert(0, text[:room])  # messages arrive newest first
            self._system_len += min(len(text), room) + 1

    def add_tool_definitions(self, tools: Any) -> None:
        if tools is None:
            return
        self.total_chars += self._add_tools(tools)

    # -- helpers

    def _size_messages(self, messages: list[Any] | tuple[Any, ...]) -> None:
        n = len(messages)
        sized = min(n, _MAX_SIZED_MESSAGES)
        total = 0
        for i in range(n - sized, n):  # the newest ones: they are also the ones read in detail
            total += walk.rough_size(messages[i])
        if sized < n:  # bounded cost for absurdly long conversations: extrapolate the rest
            total = total * n // sized
        self.total_chars += total

    def _text_of(self, content: Any, budget: int) -> str:
        parts: list[str] = []
        self.images += walk.collect_text(content, parts, self._nodes, budget, 0)
        return "\n".join(parts)

    def _add_message(self, message: Any, *, is_last_user: bool) -> None:
        if isinstance(message, str):  # a bare string in a message list: treat as a user turn
            message = {"role": "user", "content": message}
        if not walk.is_map(message):
            return
        role = walk.role_of(message)
        content = walk.split_tool_parts(walk.field(message, "content"), self._add_tools)
        if is_last_user:
            self._set_last_user(content)
        elif role in _SYSTEM_ROLES:
            self.add_system_content(content)
        elif role in _TOOL_ROLES:
            name = walk.field(message, "name")
            self._add_tools([name, content] if isinstance(name, str) else content)
        else:
            self._add_history(content)
        # Tool calls made by the assistant: names and arguments.
        for key in ("tool_calls", "function_call"):
            calls = walk.field(message, key)
            if calls is not None:
                self.total_chars += self._add_tools(calls)

    def _set_last_user(self, content: Any) -> None:
        if isinstance(content, str):
            text = content
        else:
            text = self._text_of(content, 4 * (LAST_USER_HEAD + LAST_USER_TAIL))
        self._last_user = text

    def _add_history(self, content: Any) -> None:
        room = HISTORY_CAP - self._history_len
        if room <= 0:
            self.images += walk.count_media(content)
            return
        text = content if isinstance(content, str) else self._text_of(content, HISTORY_CAP * 4)
        if text:
            text = text[-room:]  # of the oldest turn that still fits, keep the end (nearest the rest)
            self._history.append(text)
            self._history_len += len(text) + 1

    def _add_tools(self, obj: Any) -> int:
        """Add tool text under the cap; return the characters found (before capping)."""
        room = TOOLS_CAP - self._tools_len
        if room <= 0:
            return 0
        parts: list[str] = []
        self.images += walk.collect_text(obj, parts, self._nodes, room, 0, keys=True)
        text = " ".join(parts)
        if text:
            self._tools.append(text[:room])
            self._tools_len += min(len(text), room) + 1
        return len(text)

    def build(self) -> RequestView:
        last = self._last_user or ""
        full_len = len(last)
        if full_len > LAST_USER_HEAD + LAST_USER_TAIL:
            last = last[:LAST_USER_HEAD] + _ELISION + last[-LAST_USER_TAIL:]
        return RequestView(
            last_user=last,
            system="\n".join(self._system)[:SYSTEM_CAP],
            history="\n".join(reversed(self._history))[-HISTORY_CAP:],
            tools="\n".join(self._tools)[:TOOLS_CAP],
            images=self.images & walk.ONE,
            turns=self.turns,
            total_chars=max(self.total_chars, full_len),
            last_user_chars=full_len,
            audio=(self.images >> 16) & walk.ONE,
            files=self.images >> 32,
        )


# --------------------------------------------------------------------------- walking
