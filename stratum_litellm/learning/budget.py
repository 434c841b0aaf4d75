"""The judged samples' budget in a process without shared state: per clock hour and day."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["LocalBudget"]


class LocalBudget:
    """Samples taken in this clock hour and day, counted here (a gateway without Redis)."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self._wall = wall
        self._lock = threading.Lock()
        self._hour = self._day = -1
        self._in_hour = self._in_day = 0

    def take(self, per_hour: int, per_day: int) -> bool:
        hour = int(self._wall() // 3600)
        with self._lock:
            if hour != self._hour:
                self._hour, self._in_hour = hour, 0
            if hour // 24 != self._day:
                self._day, self._in_day = hour // 24, 0
            if self._in_hour >= per_hour or self._in_day >= per_day:
                return False
            self._in_hour += 1
            self._in_day += 1
            return True
