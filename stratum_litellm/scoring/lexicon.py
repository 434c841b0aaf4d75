"""The hand-written word lists and phrases the measurements look for (``data/lexicon.json``).

Each list counts for one field of :class:`.measure.Counts`. Lists stay short and readable:
simple inflections are added here, and a phrase is the set of its content words.
"""

from __future__ import annotations

import json
from importlib import resources

__all__ = ["CODE_KEYWORDS", "ENUMERATION_LABELS", "FUNCTION_WORDS", "PHRASES", "WORD_LISTS"]


def _load() -> dict[str, list[str]]:
    text = resources.files("stratum_litellm.scoring").joinpath("data/lexicon.json").read_text(encoding="utf-8")
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def _inflect(words: list[str], *, inflect: bool) -> frozenset[bytes]:
    """Words plus simple inflections, so the lists stay short and readable."""
    out: set[str] = set()
    for w in words:
        out.add(w)
        if not inflect or len(w) < 4 or not w.isalpha():
            continue
        # Plurals and verb forms only: "-ly" and "-d" made "really" of "real", "based" of "base".
        if w.endswith("e"):
            out.update((w + "s", w + "d", w[:-1] + "ing"))
        elif w.endswith("y") and w[-2] not in "aeiou":
            out.update((w[:-1] + "ies", w[:-1] + "ied", w + "ing"))
        elif w.endswith(("s", "x", "z", "ch", "sh")):
            out.update((w + "es", w + "ed", w + "ing"))
        else:
            out.update((w + "s", w + "ed", w + "ing"))
    return frozenset(x.encode() for x in out)


_LEX = _load()

# Field of the measurements -> the words of its list.
WORD_LISTS: dict[str, frozenset[bytes]] = {
    field: _inflect(_LEX[key], inflect=inflect)
    for field, key, inflect in (
        ("math_words", "math", True),
        ("number_words", "number_words", False),
        ("relations", "relations", False),
        ("code_words", "code", True),
        ("reasoning", "reasoning", True),
        ("sequence", "sequence", False),
        ("negation", "negation", False),  # no inflection: "not" must not match "notes"
        ("constraints", "constraints", True),
        ("law", "law", True),
        ("medicine", "medicine", True),
        ("physics", "physics", True),
        ("logic", "logic", True),
        ("economics", "economics", True),
        ("ethics", "ethics", True),
    )
}
CODE_KEYWORDS = frozenset(w.encode() for w in _LEX["code_keywords"])  # words prose does not use
ENUMERATION_LABELS = frozenset(w.encode() for w in _LEX["enumeration_labels"])  # "statement", "step"...

# Phrases match when all their content words occur, anywhere in the text: "how many",
# "write a function", "step by step". Order is ignored on purpose: adjacency costs a text
# search per phrase and routes no better (benchmarks/RESULTS-scoring.md, "Phrase adjacency").
FUNCTION_WORDS = frozenset(
    b"the a an of to in on at by for is are was be it this that what how no not and or as so if do does".split()
)


def _phrases() -> dict[frozenset[bytes], tuple[str, ...]]:
    fields_of: dict[frozenset[bytes], tuple[str, ...]] = {}
    for field, key in (
        ("reasoning", "reasoning_phrases"),
        ("constraints", "constraint_phrases"),
        ("compute_asks", "compute_phrases"),
        ("code_words", "code_phrases"),
        ("math_words", "math_phrases"),
        ("law", "law_phrases"),
        ("medicine", "medicine_phrases"),
        ("logic", "logic_phrases"),
        ("economics", "economics_phrases"),
        ("ethics", "ethics_phrases"),
    ):
        for phrase in _LEX[key]:
            words = phrase.encode().split()
            content = frozenset(w for w in words if w not in FUNCTION_WORDS) or frozenset(words)
            fields_of[content] = tuple(dict.fromkeys(fields_of.get(content, ()) + (field,)))
    return fields_of


# A phrase's content words -> the fields it counts for.
PHRASES: dict[frozenset[bytes], tuple[str, ...]] = _phrases()
