"""The per-request override: an allowed client picks its tier by header or metadata."""

from __future__ import annotations

from typing import Mapping

from ..config import OverrideSettings, Tier
from .rules import RequestMeta


def override_tier(meta: RequestMeta, settings: OverrideSettings,
                  tiers: Mapping[Tier, int]) -> tuple[Tier | None, str | None]:
    """The tier a request asks for itself (one of ``tiers``, in any case), and why it is
    ignored when it is."""
    asked = meta.headers.get(settings.header.lower()) or meta.metadata.get(settings.metadata_key)
    if asked is None:
        return None, None
    asked = str(asked).strip()
    if asked not in tiers:
        folded = {tier.lower(): tier for tier in tiers}
        if asked.lower() not in folded:
            return None, f"override {asked[:20]!r} ignored: expected one of {', '.join(tiers)}"
        asked = folded[asked.lower()]
    allowed = (
        (meta.key_alias is not None and meta.key_alias in settings.allowed_key_aliases)
        or (meta.user_id is not None and meta.user_id in settings.allowed_users)
        or (meta.team_id is not None and meta.team_id in settings.allowed_teams)
    )
    if not allowed:
        return None, "override ignored: this key may not choose its tier"
    return asked, None  # type: ignore[return-value]
