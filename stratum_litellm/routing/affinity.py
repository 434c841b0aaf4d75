"""Conversation affinity: a multi-turn conversation stays on the tier it reached.

Answers stay consistent and the backend's prefix cache is reused. A conversation may move
up to the smart tier, never down, for ``ttl_s`` after its last request. It is identified
without storing its text: by LiteLLM's session id when the client sends one, otherwise by
a hash of the request's ``user`` and its opening messages (the system prompt and the first
user message, which every later turn repeats).
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from ..config import TIERS, Tier

_OPENING_MESSAGES = 3
_OPENING_CHARS = 4096


def conversation_key(data: Mapping[str, Any]) -> str | None:
    """A stable id of the conversation a request body belongs to, or None when it has no
    messages. Every turn of one conversation gets the same id: it is built from what
    precedes and includes the first user message, which later turns repeat unchanged."""
    for holder in (data.get("metadata"), data.get("litellm_metadata"), data):
        if isinstance(holder, Mapping):
            for field in ("session_id", "litellm_session_id"):
                value = holder.get(field)
                if isinstance(value, str) and value:
                    return "session:" + value[:200]
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    opening = []
    for message in messages[:_OPENING_MESSAGES]:
        opening.append(_bounded_text(message))
        if isinstance(message, Mapping) and message.get("role") == "user":
            break
    user = data.get("user")
    prefix = user[:200] if isinstance(user, str) else ""
    text = "\x1e".join(opening)
    digest = hashlib.blake2b(f"{prefix}\x00{text}".encode("utf-8", "replace"), digest_size=16).hexdigest()
    return "hash:" + digest


def continues(data: Mapping[str, Any]) -> bool:
    """Whether a request is a later turn of its conversation (an assistant message comes
    before it), so some earlier turn may have reached a tier. A first turn has none."""
    messages = data.get("messages")
    if not isinstance(messages, list):
        return False
    return any(isinstance(m, Mapping) and m.get("role") == "assistant" for m in messages[:_SCANNED_MESSAGES])


_SCANNED_MESSAGES = 64  # bounded: a later turn has its first answer near the start


def _bounded_text(message: Any) -> str:
    # Bounded whatever the message holds: at most a few parts, each cut short.
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        text = content[:_OPENING_CHARS]
    elif isinstance(content, list):
        pieces = []
        for part in content[:8]:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                pieces.append(part["text"][:_OPENING_CHARS])
        text = "\x1f".join(pieces)
    else:
        text = ""
    return f"{message.get('role')}:{text}"


class AffinityStore:
    """Bounded map from conversation id to the highest tier it reached, with expiry."""

    def __init__(self, ttl_s: float = 1800.0, max_conversations: int = 10_000,
                 clock: Callable[[], float] = time.monotonic, rank: Mapping[Tier, int] | None = None) -> None:
        self._ttl_s = ttl_s
        self._max = max_conversations
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[Tier, float]] = OrderedDict()
        #: Each tier's place on the ladder: a conversation is never moved down it.
        self._rank: Mapping[Tier, int] = rank if rank is not None else {t: i for i, t in enumerate(TIERS)}

    def configure(self, ttl_s: float, max_conversations: int, rank: Mapping[Tier, int] | None = None) -> None:
        """New limits, and the tiers' order (a settings reload); remembered conversations
        stay (one on a tier that is gone reads as no tier)."""
        with self._lock:
            self._ttl_s, self._max = ttl_s, max_conversations
            if rank is not None:
                self._rank = rank

    def tier(self, key: str | None) -> Tier | None:
        if key is None:
            return None
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._entries[key]
                return None
            return entry[0]

    def record(self, key: str | None, tier: Tier) -> None:
        """Remember the tier a conversation reached; it is never moved down."""
        if key is None:
            return
        now = self._clock()
        with self._lock:
            previous = self._entries.pop(key, None)
            rank = self._rank
            if previous is not None and previous[1] > now and rank.get(previous[0], -1) > rank.get(tier, -1):
                tier = previous[0]
            self._entries[key] = (tier, now + self._ttl_s)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)  # least recently used

    def __len__(self) -> int:
        return len(self._entries)
