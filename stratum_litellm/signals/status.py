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

    # The plain string, by str's own (C) methods: an Enum's .value is a slow descriptor, and
    # these are formatted on the request path.
    __str__ = str.__str__
    __format__ = str.__format__
