"""The overflow tier's budget: requests and spend over a rolling hour and day.

A routed request counts when the router sends it to the overflow tier (so a burst cannot
overshoot while its replies are still on the way); its spend counts when its success
callback brings LiteLLM's cost of the call (``response_cost``). Each window is a queue of
one-minute buckets with running sums: adding and reading are a few operations, and the
state is bounded (at most 60 + 1,440 buckets), whatever the traffic.

Each process keeps its own count; with shared state (:mod:`.shared`) the limits are checked
against every process's, and this one's is what is left when Redis is not there.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

from ..config import BudgetSettings

_MINUTE = 60.0


@dataclass(frozen=True, slots=True)
class BudgetLeft:
    """What is left of each limit the operator set (None: that limit is not set)."""

    requests_hour: int | None
    requests_day: int | None
    spend_hour_usd: float | None
    spend_day_usd: float | None
    #: Which limit is spent, as the decision's evidence shows it; None while all have room.
    spent: str | None


class _Window:
    """Counts and spend over the last ``minutes`` minutes, in one-minute buckets."""

    __slots__ = ("minutes", "buckets", "requests", "spend")

    def __init__(self, minutes: int) -> None:
        self.minutes = minutes
        #: [minute, requests, spend] per minute that saw traffic, oldest first.
        self.buckets: deque[list[float]] = deque()
        self.requests = 0
        self.spend = 0.0

    def expire(self, minute: int) -> None:
        buckets = self.buckets
        while buckets and buckets[0][0] <= minute - self.minutes:
            _, requests, spend = buckets.popleft()
            self.requests -= int(requests)
            self.spend -= spend
        if not buckets:  # no float residue once the window is empty
            self.requests, self.spend = 0, 0.0

    def add(self, minute: int, requests: int, spend: float) -> None:
        buckets = self.buckets
        if buckets and buckets[-1][0] == minute:
            buckets[-1][1] += requests
            buckets[-1][2] += spend
        else:
            buckets.append([minute, requests, spend])
        self.requests += requests
        self.spend += spend


class BudgetTracker:
    """Thread-safe; the lock is held for a few arithmetic operations only."""

    def __init__(self, settings: BudgetSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._clock = clock
        self._lock = threading.Lock()
        self._hour = _Window(60)
        self._day = _Window(1440)

    def configure(self, settings: BudgetSettings) -> None:
        """New limits (a settings reload); what was already spent stays spent."""
        self._settings = settings

    def charge_request(self) -> None:
        """One routed request sent to the overflow tier."""
        self._add(1, 0.0)

    def charge_spend(self, usd: float) -> None:
        """The cost of a call the overflow tier served; junk (negative, NaN) is dropped."""
        if isinstance(usd, (int, float)) and math.isfinite(usd) and usd > 0.0:
            self._add(0, float(usd))

    def _add(self, requests: int, spend: float) -> None:
        minute = int(self._clock() // _MINUTE)
        with self._lock:
            for window in (self._hour, self._day):
                window.expire(minute)
                window.add(minute, requests, spend)

    def left(self, used: tuple[int, int, float, float] | None = None) -> BudgetLeft:
        """What is left; ``used`` (hour requests, day requests, hour spend, day spend) in
        place of this process's own count: every process's, from the shared state."""
        settings = self._settings
        if used is None:
            minute = int(self._clock() // _MINUTE)
            with self._lock:
                self._hour.expire(minute)
                self._day.expire(minute)
                used = (self._hour.requests, self._day.requests, self._hour.spend, self._day.spend)
        limits = (settings.requests_per_hour, settings.requests_per_day,
                  settings.spend_per_hour_usd, settings.spend_per_day_usd)
        left = [None if limit is None else max(0, limit - use) for limit, use in zip(limits, used)]
        spent = None
        for name, limit, use, rest in zip(_NAMES, limits, used, left):
            if limit is not None and rest is not None and rest <= 0:
                spent = f"{name} spent ({_shown(use)} of {_shown(limit)})"
                break
        return BudgetLeft(left[0], left[1], left[2], left[3], spent)  # type: ignore[arg-type]


_NAMES = ("requests_per_hour", "requests_per_day", "spend_per_hour_usd", "spend_per_day_usd")


def _shown(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:.4f}"
