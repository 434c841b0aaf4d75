"""Rule patterns, matched in linear time by RE2 (``google-re2``).

A pattern from the configuration runs on every routed request over text a client wrote,
so no pattern may backtrack: with Python's ``re``, ``(a|aa)+$`` on 34 characters takes
seconds and stalls the whole gateway. RE2 matches in time linear in the text for any
pattern it accepts, and refuses at load what would need backtracking (backreferences,
lookahead, lookbehind). Its ``\\w``, ``\\d``, ``\\s`` and ``\\b`` are ASCII; ``\\pL``,
``\\p{Han}`` and the like match Unicode classes.
"""

from __future__ import annotations

from typing import Protocol

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # refusals are reported as settings errors, not on stderr


class Pattern(Protocol):
    def search(self, text: str) -> object | None: ...


def compile_pattern(pattern: str) -> Pattern:
    """The compiled pattern, or ``ValueError`` saying why RE2 refuses it."""
    try:
        return re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode("utf-8", "replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"pattern {pattern!r} refused: {detail} (patterns are matched by RE2, in linear time: "
                         "no backreferences, lookahead or lookbehind)") from None
