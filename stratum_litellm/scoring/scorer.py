"""Complexity score of a chat request: a number in [0, 1], higher = more likely to need the strong tier.

The score is a logistic combination of named, explainable dimensions::

    value = sigmoid(bias + sum(weight[d] * level[d] for d in DIMENSIONS))

A prompt becomes a score in four steps, in this order below:

1. ``_counts``: each text of the request is measured (:func:`.measure.measure`: word lists,
   symbols, shapes) and the counts are summed, the last user turn fully, the system prompt,
   earlier turns and tool traffic at a discount (``SEGMENT_WEIGHTS``);
2. ``_context``: how agentic or long-running the conversation is;
3. ``_levels``: each dimension's level in [0, 1], from the counts;
4. ``_score``: the weighted levels (``Score.parts``, in logit units, so the parts explain
   the value) and the value. ``_score_kernel.c`` does the same in C, where it was built.

Weights and bias come from a profile (:mod:`.profile`): the shipped default, or one the
operator fitted on their own labels with ``stratum fit``; operators may also override any
weight. A profile may add a learned part over the words of the last user turn
(:mod:`.text`), which enters the logit beside the dimensions (``Score.learned``). The work is
bounded: a view holds at most ``MAX_SCANNED_CHARS`` characters whatever the request size,
and the learned part reads at most ``text.MAX_TOKENS`` words.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import NamedTuple

from .dimensions import DIMENSIONS
from .measure import FIELDS, Counts, measure
from .native import load
from .profile import Profile, builtin
from .text import contribution
from .view import RequestView

__all__ = ["DIMENSIONS", "KERNEL", "SEGMENT_WEIGHTS", "Score", "Scorer", "default_profile", "default_weights", "levels",
           "score_text"]


# How much each text of a request counts, relative to the last user turn.
SEGMENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"last_user": 1.0, "system": 0.5, "history": 0.35, "tools": 0.3}
)


# --------------------------------------------------------------------------- 1. counts

# Repeated system prompts and tool schemas are measured once. A plain dict, cleared when
# full: every operation is atomic under the GIL, so threads can share it safely.
_CACHE: dict[str, Counts] = {}
_CACHE_SIZE = 64


def _measure_cached(text: str) -> Counts:
    hit = _CACHE.get(text)
    if hit is None:
        hit = measure(text)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[text] = hit
    return hit


def _counts(view: RequestView) -> Counts:
    """The request's counts: each text's, weighted by SEGMENT_WEIGHTS and summed."""
    last = view.last_user if isinstance(view.last_user, str) else ""
    total = measure(last)
    full = view.last_user_chars  # the last turn's length before capping (-1: not capped)
    if last and type(full) is int and full > len(last):
        # A capped last turn still counts as long as it was.
        total = total._replace(tokens=total.tokens * (full / len(last)))
    if not (view.system or view.history or view.tools):
        return total  # one turn and nothing else: most requests
    for name in ("system", "history", "tools"):
        text = getattr(view, name)
        if text and isinstance(text, str):
            counts = measure(text) if name == "history" else _measure_cached(text)
            weight = SEGMENT_WEIGHTS[name]
            total = Counts._make(t + weight * c if c else t for t, c in zip(total, counts))
    return total


# --------------------------------------------------------------------------- 2. context


def _saturate(x: float, half: float) -> float:
    """A count mapped to [0, 1): ``half`` gives 0.5, and it never reaches 1."""
    return x / (x + half) if x > 0 else 0.0


def _context(view: RequestView) -> float:
    """Agentic or long-running conversations: tools, many turns, a big system prompt, attachments."""
    if view.turns <= 1 and not view.tools and not view.system and view.images <= 0:
        return 0.0  # a single plain turn, the common case (what the sum below gives, sooner)
    tools = 0.5 if view.tools else 0.0
    turns = min(1.0, max(0, view.turns - 1) / 12.0) * 0.25
    system = _saturate(len(view.system) / 4.0, 400.0) * 0.15
    media = min(2, max(0, view.images)) * 0.05
    return min(1.0, tools + turns + system + media)


# --------------------------------------------------------------------------- 3. levels

_LOG_LENGTH_CAP = math.log1p(4000 / 8.0)


def _levels(c: Counts, context: float) -> dict[str, float]:
    """Each dimension's level in [0, 1], in DIMENSIONS order, from a request's counts."""
    # Log scale: 8 tokens -> 0.11, 60 -> 0.35, 250 -> 0.56, 1k -> 0.78, 4k+ -> 1.
    length = min(1.0, math.log1p(c.tokens / 8.0) / _LOG_LENGTH_CAP) if c.tokens > 0 else 0.0
    # A word problem asks for a computed quantity ("how many", "calculate") and gives
    # numbers, or asks a question about three or more of them. Its difficulty grows with
    # the quantities given relative to others ("40 fewer than", "twice as many", "20%"):
    # each is a step a weak model can get wrong.
    quantities = c.numbers + c.number_words
    if c.compute_asks > 0 and quantities >= 2:
        problem = 1.0
    elif c.compute_asks > 0 or (quantities >= 3 and c.questions > 0):
        problem = 0.5
    else:
        problem = 0.0
    arithmetic = problem * c.relations / (c.relations + 2.0) if c.relations > 0 else 0.0
    code = 0.5 * c.code_syntax + c.code_words
    steps = c.enumerations + c.sequence + max(0.0, c.questions - 1.0)
    levels = {
        "length": length,
        "math": _saturate(c.math_notation + c.math_words, 3.0),
        "arithmetic": arithmetic,
        "code": _saturate(code, 2.0),
        "reasoning": _saturate(c.reasoning, 3.0),
        "steps": _saturate(steps, 3.0),
        "entities": _saturate(c.entities, 5.0),
        "constraints": _saturate(c.constraints, 3.0),
        "negation": _saturate(c.negation, 2.0),
    }
    # Domains compete: a legal fact pattern mentions a doctor or a price in passing, so a
    # domain keeps its level in proportion to its share of the strongest domain's words.
    domains = {"law": c.law, "medicine": c.medicine, "physics": c.physics, "logic": c.logic,
               "economics": c.economics, "ethics": c.ethics}
    top = max(domains.values())
    for name, n in domains.items():
        levels[name] = n / (n + 2.0) * n / top if n > 0 else 0.0
    levels["context"] = context
    return levels


def levels(view: RequestView) -> dict[str, float]:
    """The level of every dimension, in [0, 1], for a request view."""
    return _levels(_counts(view), _context(view))


# --------------------------------------------------------------------------- 4. score


def _score(counts: Counts, context: float, weights: Sequence[float],
           bias: float) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """(value, parts, levels) of a request's counts, with weights in DIMENSIONS order."""
    level = _levels(counts, context)
    parts = [w * x for w, x in zip(weights, level.values())]
    total = 0.0
    for part in parts:  # added in order, as _score_kernel.c adds them (sum() rounds differently from 3.12)
        total += part
    z = bias + total
    if not math.isfinite(z):
        z = bias
    value = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))
    return value, tuple(parts), tuple(level.values())


def _load_kernel():  # type: ignore[no-untyped-def]
    """_score, in C where it was built for these counts and dimensions (the same results, cheaper)."""
    native = load("kernel")
    if native is None:
        return _score
    if native.FIELDS != FIELDS or native.DIMENSIONS != DIMENSIONS:
        logging.getLogger(__name__).warning("C score kernel built for other counts or dimensions; using the Python one")
        return _score
    return native.score


_KERNEL = _load_kernel()
KERNEL = "python" if _KERNEL is _score else "c"


_DEFAULT: Profile | None = None


def default_profile() -> Profile:
    """The shipped default profile (read once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = builtin("default")
    return _DEFAULT


def default_weights() -> dict[str, float]:
    """A copy of the default profile's dimension weights (logit units per unit of level)."""
    return dict(default_profile().weights)


class DimensionValues(Mapping[str, float]):
    """Read-only mapping of one number per dimension, in DIMENSIONS order.

    Built on every request but read on few (explain, logs), so it holds the values and
    makes no dict until asked: ``dict(parts)`` when needed.
    """

    __slots__ = ("_values",)

    def __init__(self, values: Sequence[float]) -> None:
        self._values = tuple(values)

    def __getitem__(self, key: str) -> float:
        return self._values[_POSITION[key]]

    def __iter__(self) -> Iterator[str]:
        return iter(DIMENSIONS)

    def __len__(self) -> int:
        return len(DIMENSIONS)

    def __repr__(self) -> str:
        return repr(dict(zip(DIMENSIONS, self._values)))


_POSITION = {d: i for i, d in enumerate(DIMENSIONS)}
_NO_VALUES: Mapping[str, float] = MappingProxyType({})


class Score(NamedTuple):
    """A score and what made it (immutable).

    ``parts[d]`` is dimension d's contribution in logit units (weight x level) and
    ``learned`` the learned part's (the profile's words), so
    ``value == sigmoid(bias + sum(parts.values()) + learned)``; ``levels[d]`` is its level in [0, 1].
    """

    value: float  # in [0, 1]
    parts: Mapping[str, float] = _NO_VALUES
    levels: Mapping[str, float] = _NO_VALUES
    learned: float = 0.0


class Scorer:
    """Scores requests with a profile (None: the shipped default); ``weights`` overrides
    some of its dimension weights (numbers the settings have already checked; a name that
    is not a dimension is refused here, where the dimensions are known)."""

    __slots__ = ("_bias", "_weights", "_ordered", "_profile", "_table", "_mask")

    def __init__(self, weights: Mapping[str, float] | None = None, profile: Profile | None = None) -> None:
        profile = profile if profile is not None else default_profile()
        merged = dict(profile.weights)
        for name, value in (weights or {}).items():
            if name not in merged:
                raise ValueError(f"unknown scoring dimension {name!r}; the dimensions are: {', '.join(DIMENSIONS)}")
            merged[name] = float(value)
        self._weights = merged
        self._ordered = tuple(merged[d] for d in DIMENSIONS)
        self._bias = profile.bias
        self._profile = profile
        # The learned part's table, read by text.contribution directly (one call less per request).
        self._table = profile.text.table if profile.text is not None else None
        self._mask = profile.text.mask if profile.text is not None else 0

    @property
    def weights(self) -> Mapping[str, float]:
        return MappingProxyType(self._weights)

    @property
    def bias(self) -> float:
        return self._bias

    @property
    def profile(self) -> Profile:
        return self._profile

    def score(self, view: RequestView) -> Score:
        """Score a request view; never raises (an unreadable view scores as an empty one)."""
        try:
            learned = 0.0
            if self._table is not None and view.last_user:
                learned = contribution(view.last_user, self._table, self._mask)
            value, parts, level = _KERNEL(_counts(view), _context(view), self._ordered, self._bias + learned)
        except Exception:  # noqa: BLE001 - a router must not fail a request over scoring
            learned = 0.0
            value, parts, level = _score(Counts(), 0.0, self._ordered, self._bias)
        return Score(value, DimensionValues(parts), DimensionValues(level), learned)


_DEFAULT_SCORER: Scorer | None = None


def score_text(prompt: str) -> Score:
    """Score a bare prompt with the default weights."""
    global _DEFAULT_SCORER
    if _DEFAULT_SCORER is None:
        _DEFAULT_SCORER = Scorer()
    return _DEFAULT_SCORER.score(RequestView.from_prompt(prompt))
