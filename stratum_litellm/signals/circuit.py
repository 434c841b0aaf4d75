"""The GPU utilisation circuit: "too busy" with hysteresis, so routing does not flap."""

from __future__ import annotations

import math


class UtilisationCircuit:
    """Trips open when utilisation reaches ``trip_pct`` and closes again only once it falls
    to ``reset_pct`` (below ``trip_pct``; the settings validate that).

    Not thread-safe: readings must be fed in the order they were taken, so the caller
    (``Signals``) feeds it under one lock.
    """

    def __init__(self, trip_pct: float = 90.0, reset_pct: float = 75.0) -> None:
        self.trip_pct = float(trip_pct)
        self.reset_pct = float(reset_pct)
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    def update(self, utilization_pct: float | None) -> bool | None:
        """Feed one reading; True = open (too busy), False = closed, None = unknown input.

        An unknown reading (None or NaN) leaves the state untouched: the next real
        reading continues from where the circuit was instead of silently closing it.
        """
        if utilization_pct is None or math.isnan(utilization_pct):
            return None
        if self._open:
            if utilization_pct <= self.reset_pct:
                self._open = False
        elif utilization_pct >= self.trip_pct:
            self._open = True
        return self._open
