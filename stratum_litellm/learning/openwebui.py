"""Users' verdicts in Open WebUI, joined to the router's decisions, as labels.

Open WebUI keeps each rating (thumbs up / down) with the id of the answer's message; an
admin reads them all at ``/api/v1/evaluations/feedbacks/all/export``. The gateway recorded
its decision for every answer Open WebUI asked for under that same id (Open WebUI sends it
as a connection header, ``learning.feedback``), so each rating finds the tier that served it:

- a thumbs-down on an answer of the first tier: "needs the stronger tier";
- a thumbs-up on one: "the first tier was enough";
- a rating of a stronger tier's answer says nothing about the first tier: no label;
- an answer of the first tier that the user regenerated (another answer to the same user
  message, in the same chat) and did not rate: a weak "needs the stronger tier" (weight 0.5).

A rating changed later replaces the label it made (one label per message id).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from .labels import Label
from .store import Decision

__all__ = ["EXPORT_PATH", "Import", "Rating", "fetch_ratings", "labels_of", "parse_ratings"]

EXPORT_PATH = "/api/v1/evaluations/feedbacks/all/export"
#: A regeneration is a weaker verdict than a rating.
REGENERATION_WEIGHT = 0.5


@dataclass(frozen=True, slots=True)
class Rating:
    message_id: str
    #: +1 thumbs-up, -1 thumbs-down.
    rating: int
    chat_id: str | None = None
    updated_at: float = 0.0


@dataclass
class Import:
    """What an import found, for the operator."""

    ratings: int = 0
    labels: list[Label] = field(default_factory=list)
    #: Ratings whose answer the gateway has no decision for (before the set-up, or expired).
    unjoined: int = 0
    #: Ratings of answers a stronger tier gave.
    stronger_tier: int = 0
    regenerations: int = 0


def fetch_ratings(url: str, key: str, timeout_s: float = 60.0) -> list[Rating]:
    """Every rating an Open WebUI at ``url`` holds (``key``: an admin's API key or token)."""
    response = httpx.get(url.rstrip("/") + EXPORT_PATH, headers={"Authorization": f"Bearer {key}"},
                         timeout=timeout_s, follow_redirects=True)
    if response.status_code in (401, 403):
        raise PermissionError(f"Open WebUI at {url} refused the key ({response.status_code}): reading every "
                              "rating needs an admin's API key")
    response.raise_for_status()
    try:
        document = response.json()
    except ValueError:
        raise ValueError(f"Open WebUI at {url} did not answer {EXPORT_PATH} with JSON: is it Open WebUI "
                         "0.5 or later?") from None
    return parse_ratings(document)


def parse_ratings(document: Any) -> list[Rating]:
    """The thumbs of an export (the newest per message), skipping anything else."""
    if not isinstance(document, list):
        raise ValueError(f"expected a list of feedbacks, got {type(document).__name__}")
    newest: dict[str, Rating] = {}
    for item in document:
        if not isinstance(item, Mapping) or item.get("type") != "rating":
            continue
        data, meta = item.get("data"), item.get("meta")
        if not isinstance(data, Mapping) or not isinstance(meta, Mapping):
            continue
        message_id = meta.get("message_id")
        value = _thumb(data.get("rating"))
        if not isinstance(message_id, str) or not message_id or value is None:
            continue
        updated = item.get("updated_at") or item.get("created_at") or 0
        rating = Rating(message_id, value, meta.get("chat_id") if isinstance(meta.get("chat_id"), str) else None,
                        float(updated) if isinstance(updated, (int, float)) else 0.0)
        if message_id not in newest or rating.updated_at >= newest[message_id].updated_at:
            newest[message_id] = rating
    return list(newest.values())


def _thumb(value: Any) -> int | None:
    if isinstance(value, str):
        value = value.strip()
        value = int(value) if value.lstrip("+-").isdigit() else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return 1 if value > 0 else -1 if value < 0 else None


def labels_of(ratings: Sequence[Rating], decisions: Iterable[Decision], now: float | None = None) -> Import:
    """The labels the ratings (and the regenerations among the decisions) make."""
    now = time.time() if now is None else now
    found = Import(ratings=len(ratings))
    by_message: dict[str, Decision] = {}
    turns: dict[tuple[str, str], list[Decision]] = {}
    for decision in decisions:
        by_message[decision.message_id] = decision
        if decision.chat_id and decision.user_message_id:
            turns.setdefault((decision.chat_id, decision.user_message_id), []).append(decision)
    rated = set()
    for rating in ratings:
        decision = by_message.get(rating.message_id)
        if decision is None:
            found.unjoined += 1
            continue
        rated.add(rating.message_id)
        if not decision.first_tier:
            found.stronger_tier += 1
            continue
        found.labels.append(_label(decision, rating.rating < 0, "openwebui", 1.0, rating.updated_at or now))
    for answers in turns.values():
        answers.sort(key=lambda d: d.created)
        for earlier in answers[:-1]:  # each answer but the newest was regenerated
            if earlier.first_tier and earlier.message_id not in rated:
                found.regenerations += 1
                found.labels.append(_label(earlier, True, "regeneration", REGENERATION_WEIGHT, now))
    return found


def _label(decision: Decision, needs_strong: bool, source: str, weight: float, created: float) -> Label:
    return Label(decision.example, needs_strong, source, weight, ref=f"openwebui:{decision.message_id}",
                 tier=decision.tier, score=decision.score, profile=decision.profile, created=created)
