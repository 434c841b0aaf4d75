"""How trustworthy a reading is: one vocabulary for GPU and backend readings alike."""

from __future__ import annotations

from enum import Enum


class Status(str, Enum):
    """The state of one signal source at one moment.

    A ``str`` enum, so it is its own label value in metrics, logs and JSON evidence.
    """

    #: Read in time; its numbers can be trusted.
    OK = "ok"
    #: The backend answers but its model is not loaded (loading, unloaded, asleep).
    LOADING = "loading"
    #: Unreachable or erroring; the reading's error says why.
    DOWN = "down"
    #: Never read, not readable here, or not a source this router knows.
    UNKNOWN = "unknown"
    #: Read once, but not refreshed in time: its numbers are no longer trusted.
    STALE = "stale"

    def __str__(self) -> str:  # "ok", not "Status.OK", wherever it is printed
        return self.value
