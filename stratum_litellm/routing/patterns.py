"""Refuse operator regular expressions that can backtrack catastrophically.

Python's ``re`` backtracks, so a pattern such as ``(a+)+$`` takes exponential time on a
crafted input: one request could stall the gateway. The config loader refuses the usual
culprits: an unbounded repetition inside another (``(a+)+``, ``(.*)*``, ``(\\w+\\s?)*``),
and an unbounded repetition over alternatives that can start with the same character
(``(ab|a)*``, ``(\\d+x|\\w)*``). Single-character alternatives (``(a|b)*``) are safe: the
parser turns them into one character class.
"""

from __future__ import annotations

from typing import Any

try:  # Python 3.11+
    import re._constants as _constants
    import re._parser as _parser
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _constants  # type: ignore[no-redef]
    import sre_parse as _parser  # type: ignore[no-redef]

MAX_PATTERN_LENGTH = 1000

_REPEATS = {_constants.MAX_REPEAT, _constants.MIN_REPEAT, getattr(_constants, "POSSESSIVE_REPEAT", None)}
_UNBOUNDED = _constants.MAXREPEAT


def unsafe_reason(pattern: str) -> str | None:
    """Why ``pattern`` is refused, or None when it is acceptable."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters"
    try:
        parsed = _parser.parse(pattern)
    except Exception as exc:  # re.error and parser internals
        return f"does not compile: {exc}"
    return _check(list(parsed), inside_unbounded=False)


def _check(items: list[tuple[Any, Any]], inside_unbounded: bool) -> str | None:
    for op, arg in items:
        if op in _REPEATS and op is not None:
            low, high, body = arg
            unbounded = high == _UNBOUNDED or high > 100
            if inside_unbounded and (unbounded or low != high):
                return "a variable repetition inside an unbounded one (like (a+)+), which can backtrack for ever"
            if unbounded and _overlapping_branches(body):
                return "an unbounded repetition of alternatives that can start with the same character"
            reason = _check(list(body), inside_unbounded or unbounded)
            if reason:
                return reason
        else:
            for child in _children(op, arg):
                reason = _check(child, inside_unbounded)
                if reason:
                    return reason
    return None


def _children(op: Any, arg: Any) -> list[list[tuple[Any, Any]]]:
    if op == _constants.SUBPATTERN:
        return [list(arg[-1])]
    if op == _constants.BRANCH:
        return [list(branch) for branch in arg[1]]
    if op in (_constants.ASSERT, _constants.ASSERT_NOT):
        return [list(arg[1])]
    if op == getattr(_constants, "ATOMIC_GROUP", None):
        return []  # atomic groups do not backtrack into themselves
    if op == _constants.GROUPREF_EXISTS:
        return [list(a) for a in arg[1:] if a is not None]
    return []


def _overlapping_branches(body: Any) -> bool:
    items = list(body)
    if len(items) == 1 and items[0][0] == _constants.SUBPATTERN:
        items = list(items[0][1][-1])
    if len(items) != 1 or items[0][0] != _constants.BRANCH:
        return False
    firsts = [_first_chars(list(branch)) for branch in items[0][1][1]]
    for i, a in enumerate(firsts):
        for b in firsts[i + 1:]:
            if a & b:
                return True
    return False


_ASCII = set(range(128))
_CATEGORIES = {
    _constants.CATEGORY_DIGIT: {c for c in _ASCII if chr(c).isdigit()},
    _constants.CATEGORY_WORD: {c for c in _ASCII if chr(c).isalnum() or chr(c) == "_"},
    _constants.CATEGORY_SPACE: {c for c in _ASCII if chr(c).isspace()},
}
_CATEGORIES[_constants.CATEGORY_NOT_DIGIT] = _ASCII - _CATEGORIES[_constants.CATEGORY_DIGIT]
_CATEGORIES[_constants.CATEGORY_NOT_WORD] = _ASCII - _CATEGORIES[_constants.CATEGORY_WORD]
_CATEGORIES[_constants.CATEGORY_NOT_SPACE] = _ASCII - _CATEGORIES[_constants.CATEGORY_SPACE]


def _first_chars(items: list[tuple[Any, Any]]) -> set[int]:
    """The characters (approximated over ASCII) a branch can start with; anything this
    cannot tell counts as every character, so such branches are taken to overlap."""
    if not items:
        return set(_ASCII)
    op, arg = items[0]
    if op == _constants.LITERAL:
        return {arg}
    if op == _constants.SUBPATTERN:
        return _first_chars(list(arg[-1]))
    if op == _constants.IN:
        chars: set[int] = set()
        negate = False
        for item_op, item_arg in arg:
            if item_op == _constants.NEGATE:
                negate = True
            elif item_op == _constants.LITERAL:
                chars.add(item_arg)
            elif item_op == _constants.RANGE:
                chars.update(range(item_arg[0], min(item_arg[1], 127) + 1))
            elif item_op == _constants.CATEGORY and item_arg in _CATEGORIES:
                chars |= _CATEGORIES[item_arg]
            else:
                return set(_ASCII)
        return _ASCII - chars if negate else chars
    return set(_ASCII)
