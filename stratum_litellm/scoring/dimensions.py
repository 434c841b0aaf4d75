"""The named dimensions of a score, in the order every part of the scorer lists them."""

from __future__ import annotations

__all__ = ["DIMENSIONS"]

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
