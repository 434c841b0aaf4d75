"""Bounded walks over the parts of a request body the view reads: roles, sizes, media
and tool parts counted, nested text collected, within a node, depth and character budget
(the request body is anything a client sent)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import islice
from typing import Any

# Work bounds of one walk: with the view's own they keep a decision under a millisecond
# whatever the shape (benchmarks/routing/request_shapes.py, RESULTS-routing.md).
MAX_SIZED_PARTS = 32  # parts of one message whose size is summed; the rest is extrapolated
MAX_PARTS = 128  # parts of one content list looked at (text, media, tool blocks)
MAX_DEPTH = 12

# Non-text parts are counted, never read.
MEDIA_PART_TYPES = frozenset(
    {"image_url", "image", "input_image", "input_audio", "audio", "file", "input_file", "document", "video",
     "video_url"}
)
AUDIO_PART_TYPES = frozenset({"input_audio", "audio"})
FILE_PART_TYPES = frozenset({"file", "input_file", "document"})
# A media part's weight in the count a walk returns: one int carries three counts (any
# media, audio, files; each under 2**16 by the walk's bounds), so a walk still adds ints.
AUDIO = 1 << 16
FILE = 1 << 32
ONE = 0xFFFF
# JSON-schema and envelope keys say nothing about the task; parameter names do.
SCHEMA_KEYS = frozenset(
    {"function", "name", "description", "parameters", "properties", "required", "arguments", "text", "content",
     "items", "enum", "default", "strict", "additionalProperties", "input", "output", "input_schema", "format"}
)
TOOL_PART_TYPES = frozenset({"tool_use", "tool_result", "function_call", "function_call_output", "tool_call"})
# Structural keys ("type", "role") carry no meaning for a router.
STRUCTURAL_KEYS = frozenset({"type", "role", "id", "tool_call_id", "cache_control", "index"})


def is_map(obj: Any) -> bool:
    # Plain dicts first: an ABC isinstance check costs ten times more, on every message.
    return type(obj) is dict or isinstance(obj, Mapping)


def field(obj: Any, key: str) -> Any:
    if type(obj) is dict:
        return obj.get(key)
    if isinstance(obj, Mapping):
        try:
            return obj.get(key)
        except Exception:  # noqa: BLE001 - exotic mappings
            return None
    return None


def role_of(message: Any) -> str:
    if isinstance(message, str):
        return "user"
    role = field(message, "role")
    if isinstance(role, str):
        return role.lower()
    # Responses API items without a role (function_call, ...) are tool traffic.
    return "tool" if is_tool_part(message) else ""


def scalar_text(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return ""


def rough_size(message: Any) -> int:
    """Characters of a message's text content, cheaply (no deep walk)."""
    if isinstance(message, str):
        return len(message)
    content = field(message, "content")
    if isinstance(content, str):
        return len(content)
    size = 0
    if isinstance(content, (list, tuple)) and content:
        sampled = content[:MAX_SIZED_PARTS]
        for part in sampled:
            if isinstance(part, str):
                size += len(part)
            else:
                text = field(part, "text")
                if isinstance(text, str):
                    size += len(text)
        size = size * len(content) // len(sampled)
    return size


def split_tool_parts(content: Any, sink: Any) -> Any:
    """Send tool-use / tool-result blocks of a content list to ``sink``; return the rest."""
    if not isinstance(content, (list, tuple)):
        return content
    rest = []
    for part in content[:MAX_PARTS]:
        if is_tool_part(part):
            sink(part)
        else:
            rest.append(part)
    return rest


def is_tool_part(part: Any) -> bool:
    kind = field(part, "type")
    return isinstance(kind, str) and kind in TOOL_PART_TYPES  # (an unhashable "type" must not raise)


def count_media(content: Any) -> int:
    if not isinstance(content, (list, tuple)):
        return 0
    return sum(media_weight(part) for part in content[:MAX_PARTS])


def media_weight(part: Any) -> int:
    """0 for a part that is not media, else its weight in the packed count (see AUDIO)."""
    if not is_map(part):
        return 0
    kind = field(part, "type")
    if isinstance(kind, str) and kind in MEDIA_PART_TYPES:
        return 1 + (AUDIO if kind in AUDIO_PART_TYPES else FILE if kind in FILE_PART_TYPES else 0)
    if kind is None and "image_url" in part:
        return 1
    if kind is None and "input_audio" in part:
        return 1 + AUDIO
    return 0


def collect_text(obj: Any, out: list[str], nodes: list[int], budget: int, depth: int, *, keys: bool = False) -> int:
    """Append the strings found in ``obj`` to ``out`` within a node and character budget.

    Returns the media parts (images, audio, files) met, which are counted and never read,
    as a packed count (see AUDIO). ``keys`` also collects mapping keys (tool schemas name their parameters
    in keys). ``nodes`` is a one-item list shared by every walk of the request.
    """
    return walk(obj, out, nodes, [budget], depth, keys)


def walk(obj: Any, out: list[str], nodes: list[int], chars: list[int], depth: int, keys: bool) -> int:
    # ``chars`` is the characters still wanted, shared by the whole walk like ``nodes``.
    if nodes[0] <= 0 or depth > MAX_DEPTH or chars[0] <= 0:
        return 0
    nodes[0] -= 1
    if isinstance(obj, str):
        text = obj if len(obj) <= chars[0] else obj[:chars[0]]
        out.append(text)
        chars[0] -= len(text) + 1
        return 0
    media = 0
    if is_map(obj):
        weight = media_weight(obj)
        if weight:
            return weight
        try:
            items = list(islice(obj.items(), nodes[0]))
        except Exception:  # noqa: BLE001
            return 0
        for key, value in items:
            if nodes[0] <= 0 or chars[0] <= 0:
                break
            if key in STRUCTURAL_KEYS:
                continue
            if keys and isinstance(key, str) and key not in SCHEMA_KEYS:
                out.append(key)
                chars[0] -= len(key) + 1
            media += walk(value, out, nodes, chars, depth + 1, keys)
        return media
    if isinstance(obj, (list, tuple)):
        for item in islice(obj, nodes[0]):
            if nodes[0] <= 0 or chars[0] <= 0:
                break
            media += walk(item, out, nodes, chars, depth + 1, keys)
        return media
    text = scalar_text(obj)
    if text:
        out.append(text)
        chars[0] -= len(text) + 1
    return 0
