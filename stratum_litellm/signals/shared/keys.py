"""The names of the shared state's Redis keys.

Every key of one router has the same hash tag (``{routed model}``), so a Redis Cluster
keeps them on one node and a script may touch several. No prompt text is ever part of a
key or a value: a conversation is known by a hash of its id, a user by a hash of theirs.
"""

from __future__ import annotations

import hashlib

from ...config import Tier


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "replace"), digest_size=12).hexdigest()


class Keys:
    """The keys of one router (one routed model) under one prefix."""

    __slots__ = ("base",)

    def __init__(self, prefix: str, routed_model: str) -> None:
        self.base = f"{prefix}:{{{routed_model}}}"

    def leases(self, tier: Tier) -> str:
        return f"{self.base}:leases:{tier}"

    def owner(self, tier: Tier, owner: str) -> str:
        return f"{self.base}:owner:{tier}:{digest(owner)}"

    def state(self, tier: Tier) -> str:
        return f"{self.base}:tier:{tier}"

    def probe(self, tier: Tier) -> str:
        return f"{self.base}:probe:{tier}"

    def conversation(self, conversation: str) -> str:
        return f"{self.base}:conversation:{digest(conversation)}"

    def budget_minute(self, minute: int) -> str:
        return f"{self.base}:budget:minute:{minute}"

    def budget_hour(self, hour: int) -> str:
        return f"{self.base}:budget:hour:{hour}"

    def samples_hour(self, hour: int) -> str:
        return f"{self.base}:samples:hour:{hour}"

    def samples_day(self, day: int) -> str:
        return f"{self.base}:samples:day:{day}"
