"""Complexity score of a chat request: a number in [0, 1], higher = more likely to need the strong tier.

The score is a logistic combination of named, explainable dimensions::

    value = sigmoid(bias + sum(weight[d] * signal[d] for d in DIMENSIONS))

Each ``signal[d]`` is in [0, 1] and is computed from counts of the request's text
(:mod:`stratum_litellm.scoring.measure`); ``Score.parts[d]`` is the contribution
``weight[d] * signal[d]`` in logit units, so the parts explain the value. The texts of a
request are read with different weights: the last user turn fully, the system prompt,
earlier turns and tool traffic at a discount. Weights and bias live in
``data/weights.json``, produced by ``scripts/fit_scorer.py`` from labelled routing data;
operators may override any weight. The work is bounded: a view holds at most
``MAX_SCANNED_CHARS`` characters whatever the request size.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from types import MappingProxyType
from typing import NamedTuple

from .native import load
from .view import RequestView
from .measure import _MEASURER, FIELDS, measure

__all__ = ["DIMENSIONS", "KERNEL", "SEGMENT_WEIGHTS", "Score", "Scorer", "default_weights", "score_text", "signals"]

DIMENSIONS: tuple[str, ...] = (
    "length",  # how much there is to read and answer (CJK-aware token estimate)
    "math",  # equations, math notation and vocabulary
    "arithmetic",  # a word problem asking for a computed quantity, by its size
    "code",  # code or programming in any common language
    "reasoning",  # asks to prove, derive, analyse, compare, justify...
    "steps",  # several parts: enumerated items, sequences, several questions
    "entities",  # proper nouns and acronyms
    "constraints",  # requirements: exactly, at least, must, format...
    "negation",  # not, except, unless, without...
    "law",  # specialised domains, where a weak model fails more often
    "medicine",
    "physics",  # physics, electrical engineering, astronomy
    "logic",  # formal logic, proofs, theory of computation, abstract algebra
    "economics",  # economics, finance, accounting, econometrics
    "ethics",  # moral judgement
    "context",  # a long system prompt, many turns, tools, attachments
)

# How much each text of a request counts, relative to the last user turn.
SEGMENT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {"last_user": 1.0, "system": 0.5, "history": 0.35, "tools": 0.3}
)

# _signals_of unpacks the counts in this order, and the C kernel reads them in it.
assert FIELDS == ("tokens", "sentences", "questions", "math_notation", "math_words", "numbers", "number_words",
                  "compute_asks", "relations", "code_syntax", "code_words", "reasoning", "enumerations", "sequence",
                  "entities", "negation", "constraints", "law", "medicine", "physics", "logic", "economics",
                  "ethics"), FIELDS
_TOKENS = FIELDS.index("tokens")
_LOG_LENGTH_CAP = math.log1p(4000 / 8.0)


def _sat(x: float, half: float) -> float:
    """Saturating map of a count to [0, 1): ``half`` gives 0.5."""
    return x / (x + half) if x > 0 else 0.0


def _signals_of(counts: Sequence[float], context: float) -> list[float]:
    """Signals in DIMENSIONS order from a request's counts (FIELDS order) and context signal."""
    (tokens, _, questions, math_notation, math_words, numbers, number_words, asks, rel, code_syntax, code_words,
     reasoning, enumerations, sequence, entities, negation, constraints, *domains) = counts
    # Log scale: 8 tokens -> 0.11, 60 -> 0.35, 250 -> 0.56, 1k -> 0.78, 4k+ -> 1.
    length = min(1.0, math.log1p(tokens / 8.0) / _LOG_LENGTH_CAP) if tokens > 0 else 0.0
    # A word problem asks for a computed quantity ("how many", "calculate") and gives
    # numbers, or asks a question about three or more of them. Its difficulty grows with
    # the quantities given relative to others ("40 fewer than", "twice as many", "20%"):
    # each is a step a weak model can get wrong.
    quantities = numbers + number_words
    if asks > 0 and quantities >= 2:
        problem = 1.0
    elif asks > 0 or (quantities >= 3 and questions > 0):
        problem = 0.5
    else:
        problem = 0.0
    math_n = math_notation + math_words
    code = 0.5 * code_syntax + code_words
    steps = enumerations + sequence + max(0.0, questions - 1.0)
    out = [
        length,
        math_n / (math_n + 3.0) if math_n > 0 else 0.0,
        problem * rel / (rel + 2.0) if rel > 0 else 0.0,
        code / (code + 2.0) if code > 0 else 0.0,
        reasoning / (reasoning + 3.0) if reasoning > 0 else 0.0,
        steps / (steps + 3.0) if steps > 0 else 0.0,
        entities / (entities + 5.0) if entities > 0 else 0.0,
        constraints / (constraints + 3.0) if constraints > 0 else 0.0,
        negation / (negation + 2.0) if negation > 0 else 0.0,
    ]
    # Domains compete: a legal fact pattern mentions a doctor or a price in passing, so a
    # domain keeps its signal in proportion to its share of the strongest domain's words.
    top = max(domains)
    out += [n / (n + 2.0) * n / top if n > 0 else 0.0 for n in domains]
    out.append(context)
    return out


def _python_kernel(counts: Sequence[float], context: float, weights: Sequence[float],
                   bias: float) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
    """(score, parts, signals) of a request's counts: the reference for the C kernel."""
    sig = _signals_of(counts, context)
    parts = [w * x for w, x in zip(weights, sig)]
    total = 0.0
    for part in parts:  # in order, as the C kernel adds them (sum() may compensate)
        total += part
    z = bias + total
    if not math.isfinite(z):
        z = bias
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z)))), tuple(parts), tuple(sig)


_NATIVE = load("_score_kernel")
# The C kernel performs the same operations in the same order (tests compare the two).
_KERNEL = _python_kernel if _NATIVE is None else _NATIVE.score
KERNEL = "python" if _NATIVE is None else "c"
# Scores a request of one plain turn in one C call (see Scorer.score), where the C parts exist.
_ONE_TURN = _MEASURER.score_turn if _MEASURER is not None and _NATIVE is not None else None
_NO_COUNTS = (0.0,) * len(FIELDS)


def signals(view: RequestView) -> dict[str, float]:
    """The signal of every dimension, in [0, 1], for a request view."""
    return dict(zip(DIMENSIONS, _signals_of(_counts(view), _context(view))))


def _context(view: RequestView) -> float:
    """Agentic or long-running conversations: tools, many turns, a big system prompt, attachments."""
    if view.turns <= 1 and not view.tools and not view.system and view.images <= 0:
        return 0.0  # a single plain turn, the common case (what the sum below gives, sooner)
    tools = 0.5 if view.tools else 0.0
    turns = min(1.0, max(0, view.turns - 1) / 12.0) * 0.25
    system = _sat(len(view.system) / 4.0, 400.0) * 0.15
    media = min(2, max(0, view.images)) * 0.05
    return min(1.0, tools + turns + system + media)


# Repeated system prompts and tool schemas are measured once. A plain dict, cleared when
# full: every operation is atomic under the GIL, so threads can share it safely. The cached
# lists are never mutated.
_CACHE: dict[str, list[float]] = {}
_CACHE_SIZE = 64


def _measure_cached(text: str) -> list[float]:
    hit = _CACHE.get(text)
    if hit is None:
        hit = measure(text)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.clear()
        _CACHE[text] = hit
    return hit


def _counts(view: RequestView) -> list[float]:
    """Raw counts of the request: the segments' counts, weighted and summed."""
    last = view.last_user if isinstance(view.last_user, str) else ""
    total = measure(last)
    # A capped last turn: scale its token estimate back to the full length (last_user_chars
    # is -1 when the turn was not capped).
    full = view.last_user_chars
    if last and type(full) is int and full > len(last):
        total[_TOKENS] *= full / len(last)
    if view.system or view.history or view.tools:  # most requests have one turn and nothing else
        for name in ("system", "history", "tools"):
            text = getattr(view, name)
            if not text or not isinstance(text, str):
                continue
            m = _measure_cached(text) if name != "history" else measure(text)
            w = SEGMENT_WEIGHTS[name]
            for i, v in enumerate(m):
                if v:
                    total[i] += w * v
    return total


# --------------------------------------------------------------------------- weights


def _load_weights() -> tuple[float, dict[str, float]]:
    raw = json.loads(resources.files("stratum_litellm.scoring").joinpath("data/weights.json").read_text(encoding="utf-8"))
    weights = {d: float(raw["weights"][d]) for d in DIMENSIONS}
    return float(raw["bias"]), weights


_BIAS, _DEFAULT_WEIGHTS = _load_weights()


def default_weights() -> dict[str, float]:
    """A copy of the shipped weights (logit units per unit of signal)."""
    return dict(_DEFAULT_WEIGHTS)


class DimensionValues(Mapping[str, float]):
    """Read-only mapping of one number per dimension, in DIMENSIONS order.

    Built on every request but read on few (explain, logs), so it holds the values and
    makes no dict until asked: ``dict(parts)`` or ``json.dumps(dict(parts))`` when needed.
    """

    __slots__ = ("_values",)

    def __init__(self, values: list[float] | tuple[float, ...]) -> None:
        self._values = tuple(values)

    def __getitem__(self, key: str) -> float:
        return self._values[_POSITION[key]]

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(DIMENSIONS)

    def __len__(self) -> int:
        return len(DIMENSIONS)

    def __repr__(self) -> str:
        return repr(dict(zip(DIMENSIONS, self._values)))


_POSITION = {d: i for i, d in enumerate(DIMENSIONS)}
_new_values = object.__new__


_NO_VALUES: Mapping[str, float] = MappingProxyType({})


class Score(NamedTuple):
    """A score and what made it (immutable; a named tuple is the cheapest to build per request).

    ``parts[d]`` is dimension d's contribution in logit units (weight x signal), so
    ``value == sigmoid(bias + sum(parts.values()))``; ``signals[d]`` is the raw signal in [0, 1].
    """

    value: float  # in [0, 1]
    parts: Mapping[str, float] = _NO_VALUES
    signals: Mapping[str, float] = _NO_VALUES


_new_score = tuple.__new__


class Scorer:
    """Scores requests; ``weights`` overrides some dimensions' default weights."""

    __slots__ = ("_bias", "_weights", "_wlist")

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        merged = dict(_DEFAULT_WEIGHTS)
        for name, value in (weights or {}).items():
            if name not in merged:
                raise ValueError(f"unknown scoring dimension {name!r}; the dimensions are: {', '.join(DIMENSIONS)}")
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise ValueError(f"weight of dimension {name!r} must be a number, got {value!r}") from None
            if not math.isfinite(number) or number < 0:
                raise ValueError(f"weight of dimension {name!r} must be a finite number >= 0, got {value!r}")
            merged[name] = number
        self._weights = merged
        self._wlist = tuple(merged[d] for d in DIMENSIONS)
        self._bias = _BIAS

    @property
    def weights(self) -> Mapping[str, float]:
        return MappingProxyType(self._weights)

    @property
    def bias(self) -> float:
        return self._bias

    def score(self, view: RequestView) -> Score:
        """Score a request view; never raises (an unreadable view scores as an empty one)."""
        try:
            if (_ONE_TURN is not None and view.turns <= 1 and not view.system and not view.history and not view.tools
                    and view.images <= 0 and isinstance(view.last_user, str)):
                # One plain turn, the most common request: no context, one text; the same
                # numbers as the line below, in a single C call.
                value, parts, sig = _ONE_TURN(view.last_user, view.last_user_chars, _KERNEL, self._wlist, self._bias)
            else:
                value, parts, sig = _KERNEL(_counts(view), _context(view), self._wlist, self._bias)
        except Exception:  # noqa: BLE001 - a router must not fail a request over scoring
            value, parts, sig = _python_kernel(_NO_COUNTS, 0.0, self._wlist, self._bias)
        # Built without entering a Python __init__ or __new__ (three frames per request).
        explained, signalled = _new_values(DimensionValues), _new_values(DimensionValues)
        explained._values, signalled._values = parts, sig
        return _new_score(Score, (value, explained, signalled))


_DEFAULT_SCORER: Scorer | None = None


def score_text(prompt: str) -> Score:
    """Score a bare prompt with the default weights."""
    global _DEFAULT_SCORER
    if _DEFAULT_SCORER is None:
        _DEFAULT_SCORER = Scorer()
    return _DEFAULT_SCORER.score(RequestView.from_prompt(prompt))
