"""Many byte counts over a text in one call: the engine under :mod:`stratum_litellm.scoring.measure`.

The scorer measures a text through a few *views* of its UTF-8 bytes: each view is the text
with some bytes deleted and the rest mapped through a 256-byte table (``bytes.translate``),
optionally cut to its first ``limit`` input bytes. In each view it counts fixed needles
(non-overlapping, as ``bytes.count`` does) and the bytes of byte classes; one view is split
into words that are looked up in a vocabulary whose words carry tags (the result counts
the distinct words found per tag, plus each phrase, a set of words that all occur in any
order, once per tag of its own), and one view's distinct words are counted.

Two engines give identical results:

- ``PyScanner``, pure Python: one ``translate`` / ``count`` / ``split`` call per view and needle;
- ``stratum_litellm.scoring._bytescan.Scanner``, an optional C extension built at install when a C
  compiler is present: at most one pass per view, and no Python object made per word.

:data:`Scanner` is the C engine when it was built, else the Python one; ``STRATUM_PURE_PYTHON=1``
(or ``=scan``) forces the Python one. The C engine is what keeps the request path cheap;
tests check the two agree on arbitrary inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from .native import load

__all__ = ["ENGINE", "PyScanner", "ScanResult", "Scanner", "View"]


class View(NamedTuple):
    """One view of the input bytes, and the needles to count in it."""

    table: bytes | None = None  # 256-byte translation table; None keeps bytes as they are
    delete: bytes = b""  # bytes removed (before the table applies, as in bytes.translate)
    limit: int | None = None  # read only the first `limit` input bytes
    needles: tuple[bytes, ...] = ()
    classes: tuple[bytes, ...] = ()  # each counts the view's bytes that are any of its bytes


# (counts of every view's needles then classes, flattened in view order; each view's
# length; per tag, how many distinct words carrying it were found, plus the phrases found;
# the number of distinct words in the distinct view). A word's presence is a tag of its own
# where a caller needs it.
ScanResult = tuple[list[int], list[int], list[int], int]


Phrase = tuple[Sequence[bytes], Sequence[int]]  # (words, tags)


def _check(views: Sequence[View], vocabulary: Mapping[bytes, Sequence[int]], tags: int, words_view: int,
           distinct_view: int, phrases: Sequence[Phrase]) -> None:
    for i, view in enumerate(views):
        if view.table is not None and len(view.table) != 256:
            raise ValueError(f"view {i}: the table must be 256 bytes, got {len(view.table)}")
        if view.limit is not None and view.limit < 0:
            raise ValueError(f"view {i}: limit must be >= 0, got {view.limit}")
        if any(not needle for needle in view.needles):
            raise ValueError(f"view {i}: needles must not be empty")
    for word, word_tags in vocabulary.items():
        if not word or any(not 0 <= t < tags for t in word_tags):
            raise ValueError(f"vocabulary word {word!r}: words must be non-empty and tags in [0, {tags})")
    for words, phrase_tags in phrases:
        if not words or any(w not in vocabulary for w in words):
            raise ValueError(f"phrase {words!r}: it needs words, all in the vocabulary")
        if any(not 0 <= t < tags for t in phrase_tags):
            raise ValueError(f"phrase {words!r}: tags must be in [0, {tags})")
    for name, index in (("words_view", words_view), ("distinct_view", distinct_view)):
        if not -1 <= index < len(views):
            raise ValueError(f"{name} must be -1 or a view index below {len(views)}, got {index}")


class PyScanner:
    """The pure-Python engine: the reference the C engine is tested against."""

    __slots__ = ("_views", "_vocabulary", "_words", "_tags", "_words_view", "_distinct_view", "_phrases")

    def __init__(self, views: Sequence[View], vocabulary: Mapping[bytes, Sequence[int]], tags: int = 0,
                 words_view: int = -1, distinct_view: int = -1, phrases: Sequence[Phrase] = ()) -> None:
        views = tuple(View(*v) for v in views)
        _check(views, vocabulary, tags, words_view, distinct_view, phrases)
        # Phrases keyed on their longest word: only those whose key occurs are checked.
        self._phrases: dict[bytes, list[tuple[frozenset[bytes], tuple[int, ...]]]] = {}
        for words, phrase_tags in phrases:
            key = max(words, key=len)
            self._phrases.setdefault(key, []).append((frozenset(words), tuple(phrase_tags)))
        self._views = views
        self._vocabulary = {word: tuple(t) for word, t in vocabulary.items()}
        self._words = frozenset(self._vocabulary)
        self._tags = tags
        self._words_view = words_view
        self._distinct_view = distinct_view

    def scan(self, data: bytes) -> ScanResult:
        counts: list[int] = []
        lengths: list[int] = []
        tag_counts = [0] * self._tags
        distinct = 0
        for i, (table, delete, limit, needles, classes) in enumerate(self._views):
            source = data if limit is None else data[:limit]
            view = source.translate(table, delete) if (table is not None or delete) else source
            counts.extend(map(view.count, needles))
            counts.extend(len(view) - len(view.translate(None, cls)) for cls in classes)
            lengths.append(len(view))
            if i == self._words_view:
                hits = self._words.intersection(view.split())
                for word in hits:
                    for tag in self._vocabulary[word]:
                        tag_counts[tag] += 1
                for key in hits.intersection(self._phrases):
                    for words, phrase_tags in self._phrases[key]:
                        if words <= hits:
                            for tag in phrase_tags:
                                tag_counts[tag] += 1
            if i == self._distinct_view:
                distinct = len(set(view.split()))
        return counts, lengths, tag_counts, distinct


def _load_engine() -> tuple[type, str]:
    native = load("scan")
    return (PyScanner, "python") if native is None else (native.Scanner, "c")


Scanner, ENGINE = _load_engine()
