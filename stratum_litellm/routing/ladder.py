"""The ladder: the local tiers cheapest first with the score each one takes from, and the
overflow tier above them. Read from the settings once per policy (a reload builds anew)."""

from __future__ import annotations

from ..config import StratumSettings, Tier, entry_scores


class Ladder:
    """The tiers in order, cheapest first: the local rungs with their entry scores, and
    the overflow tier above them if there is one."""

    __slots__ = ("local", "entry", "overflow", "rank", "floor", "fallback")

    def __init__(self, local: tuple[Tier, ...], entry: tuple[float, ...], overflow: Tier | None,
                 fallback: Tier) -> None:
        #: Local tiers, cheapest first; ``local[0]`` is the floor, never held off.
        self.local = local
        #: Entry score of each local tier (``entry[0]`` is 0).
        self.entry = entry
        self.overflow = overflow
        self.floor = local[0]
        self.fallback = fallback
        #: Position of each tier on the ladder (the overflow tier is the highest).
        self.rank: dict[Tier, int] = {tier: i for i, tier in enumerate(local)}
        if overflow is not None:
            self.rank[overflow] = len(local)

    @classmethod
    def of(cls, settings: StratumSettings) -> "Ladder":
        local = tuple(t for t, s in settings.tiers.items() if not s.overflow)
        overflow = next((t for t, s in settings.tiers.items() if s.overflow), None)
        return cls(local, entry_scores(settings, local), overflow, settings.fallback_tier or local[0])

    def wanted(self, score: float) -> Tier:
        """The highest local tier whose entry score ``score`` reaches."""
        entry, local = self.entry, self.local
        index = len(entry) - 1
        while index and score < entry[index]:
            index -= 1
        return local[index]

