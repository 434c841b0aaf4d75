"""Checks across keys: a ladder that can work, and the judged samples' tiers on it; the
entry scores and the judged pair the rest of the router reads."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from .base import TIER_NAME, Tier

if TYPE_CHECKING:
    from .settings import StratumSettings

def check_judged(settings: StratumSettings) -> None:
    """The judged samples' tiers exist, and the weak one is below the strong one."""
    judged = settings.learning.judged
    local = [t for t, s in settings.tiers.items() if not s.overflow]
    for key in ("weak_tier", "strong_tier"):
        tier = getattr(judged, key)
        if tier is not None and tier not in settings.tiers:
            raise ValueError(f"learning.judged.{key}: {tier!r} is not a tier (tiers: {', '.join(settings.tiers)})")
    for key in ("weak_tier", "strong_tier"):
        tier = getattr(judged, key)
        if tier is not None and settings.tiers[tier].overflow:
            raise ValueError(f"learning.judged.{key}: {tier!r} is the overflow tier; samples compare local tiers")
    weak, strong = judged_pair(settings)
    if local.index(weak) >= local.index(strong):
        raise ValueError(f"learning.judged.weak_tier: {weak!r} must be below strong_tier {strong!r} on the ladder")


def judged_pair(settings: StratumSettings) -> tuple[Tier, Tier]:
    """The tier whose answers are judged and the one they are judged against."""
    judged = settings.learning.judged
    local = [t for t, s in settings.tiers.items() if not s.overflow]
    return judged.weak_tier or local[0], judged.strong_tier or local[1]


def judge_of(settings: StratumSettings) -> tuple[Tier | None, str]:
    """Who judges: (its tier, its model group), the tier None for a model group outside the
    ladder. The top local tier unless ``learning.judged.judge`` names another."""
    named = settings.learning.judged.judge
    if named is None:
        named = [t for t, s in settings.tiers.items() if not s.overflow][-1]
    if named in settings.tiers:
        return named, settings.model_group(named)
    tier = settings.tier_of_group(named)
    return tier, named


def entry_scores(settings: StratumSettings, local: tuple[Tier, ...]) -> tuple[float, ...]:
    scores = [0.0]
    for tier in local[1:]:
        given = settings.tiers[tier].entry_score
        scores.append(settings.complexity.threshold if given is None else given)
    return tuple(scores)


def check_ladder(settings: StratumSettings) -> None:
    """Refuse a ladder that cannot work, naming the key."""
    tiers = settings.tiers
    for name in tiers:
        if not re.match(TIER_NAME, name):
            raise ValueError(f"tiers: tier name {name!r} must be 1-40 letters, digits, '_', '.' or '-'")
    local = [t for t, s in tiers.items() if not s.overflow]
    overflow = [t for t, s in tiers.items() if s.overflow]
    if len(local) < 2:
        raise ValueError(f"tiers: the ladder needs at least two local (not overflow) tiers, got {len(local)}"
                         + ("" if tiers else " (tiers is empty)"))
    if len(overflow) > 1:
        raise ValueError(f"tiers: at most one overflow tier, got {', '.join(overflow)}")
    if overflow and list(tiers)[-1] != overflow[0]:
        raise ValueError(f"tiers.{overflow[0]}.overflow: the overflow tier must come last (above every local tier)")
    groups: dict[str, str] = {}
    for name, tier in tiers.items():
        if tier.model_group in groups:
            raise ValueError(f"tiers.{name}.model_group: {tier.model_group!r} is already the model group of tier "
                             f"{groups[tier.model_group]!r}; each tier needs its own")
        groups[tier.model_group] = name
        if tier.overflow:
            if tier.entry_score is not None:
                raise ValueError(f"tiers.{name}.entry_score: an overflow tier takes no traffic by score; remove it")
            if tier.budget is None:
                raise ValueError(f"tiers.{name}.budget: an overflow tier needs a budget "
                                 "(requests_per_hour, requests_per_day, spend_per_hour_usd or spend_per_day_usd)")
        elif tier.budget is not None:
            raise ValueError(f"tiers.{name}.budget: only an overflow tier has a budget (set overflow: true)")
    if settings.routed_model in groups:
        raise ValueError(f"routed_model {settings.routed_model!r} must differ from the tiers' model groups")
    first = tiers[local[0]]
    if first.entry_score not in (None, 0.0):
        raise ValueError(f"tiers.{local[0]}.entry_score: the first tier takes every score below the next "
                         f"tier's; leave it out or set 0 (got {first.entry_score})")
    if len(local) > 2:
        missing = [t for t in local[1:] if tiers[t].entry_score is None]
        if missing:
            raise ValueError(f"tiers.{missing[0]}.entry_score: required when the ladder has more than two local tiers")
    scores = entry_scores(settings, tuple(local))
    for below, above, low, high in zip(local, local[1:], scores, scores[1:]):
        # complexity.threshold may be 0 (everything to the second tier), as it always could.
        if tiers[above].entry_score is not None and high <= low:
            raise ValueError(f"tiers.{above}.entry_score: entry scores must increase up the ladder "
                             f"({above} {high} <= {below} {low})")


