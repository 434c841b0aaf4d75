"""What the shared state tells: a claim's answer, and every tier as all processes together
have seen it at the last tick, read from the scripts' replies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ...config import Tier


class Claimed(Enum):
    GRANTED = "granted"
    TIER_FULL = "tier_full"
    OWNER_FULL = "owner_full"
    PROBE_TAKEN = "probe_taken"
    #: Redis did not answer within the budget: the request is routed from local state.
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Claim:
    result: Claimed
    #: Requests in flight on the tier across processes (with this one, when granted).
    count: int = 0
    #: The owner's requests in flight on the tier across processes.
    owned: int = 0


@dataclass(frozen=True, slots=True)
class SharedTier:
    """One tier as every process together has seen it, at the last tick."""

    #: Leases of the other processes.
    others_in_flight: int
    ttft_ema_ms: float | None
    total_ema_ms: float | None
    samples: int
    #: Local monotonic times (converted from Redis' clock).
    last_sample_at: float | None
    consecutive_failures: int
    unhealthy_until: float
    #: Some process claimed the tier's probe within the probe interval.
    probe_claimed: bool


@dataclass(frozen=True, slots=True)
class SharedView:
    tiers: Mapping[Tier, SharedTier]
    #: Overflow requests and spend of all processes: hour requests, day requests, hour
    #: spend, day spend (None: no overflow budget configured).
    budget_used: tuple[int, int, float, float] | None
    taken_at: float


def ms(value: float | None) -> str:
    return "" if value is None else repr(float(value))


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def number(value: Any) -> float | None:
    return None if value is None or value is False else float(text(value))


def tier_of(reply: Sequence[Any], now: float) -> SharedTier:
    redis_now, others, state, probe = reply
    ttft, total, samples, last_sample, failures, unhealthy_until = (number(v) for v in state)
    redis_now = float(redis_now)

    def local(at_ms: float | None) -> float | None:  # Redis' clock -> this process's monotonic one
        return None if not at_ms else now - (redis_now - at_ms) / 1000.0

    return SharedTier(
        others_in_flight=max(0, int(others)),
        ttft_ema_ms=ttft,
        total_ema_ms=total,
        samples=int(samples or 0),
        last_sample_at=local(last_sample),
        consecutive_failures=int(failures or 0),
        unhealthy_until=local(unhealthy_until) or 0.0,
        probe_claimed=bool(int(probe)),
    )
