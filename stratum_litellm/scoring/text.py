"""The learned part of a score: weights over the words of the request's last user turn.

This module is the spec; ``_text.c`` computes the same where it was built (tests compare the
two on arbitrary text). A text becomes features in three steps:

1. lower-cased (``str.lower``), it is cut into tokens: runs of letters and digits
   (``str.isalnum``), except that each CJK, kana or hangul character is a token of its own
   (those scripts do not separate words with spaces);
2. the first ``MAX_TOKENS`` tokens of its first ``MAX_CHARS`` characters give the
   features: every token, then every pair of adjacent tokens joined by one space;
3. each feature is the CRC-32 (``zlib.crc32``) of its UTF-8 bytes: a 32-bit hash.

A profile's learned part is a table of ``2**bits`` weights; a feature's weight is
``table[hash & (2**bits - 1)]``, and the part is the sum of its features' weights (each
occurrence counts) divided by the square root of how many there are, so a prompt does not
weigh more for being long. The work is bounded by ``MAX_TOKENS`` whatever the text's size.
"""

from __future__ import annotations

import math
import re
import zlib
from array import array
from collections.abc import Sequence

from .native import load

__all__ = ["ENGINE", "FEATURES", "MAX_TOKENS", "contribution", "hashes", "table", "tokens"]

#: Tokens of the last user turn read, from its start (features: as many again, less one),
#: within its first MAX_CHARS characters (so lower-casing the text is bounded too).
MAX_TOKENS = 400
MAX_CHARS = 4_000
#: The name of this feature set, written into profiles and stored labels: a profile scores
#: only with the features it was fitted on.
FEATURES = "words-1-2/crc32/v1"

# Scripts written without spaces between words: one token per character.
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002ffff"
# ``[^\W_]`` is exactly ``str.isalnum`` for one character: a token is a run of those, or one
# of them in the ranges above.
_TOKEN = re.compile(f"(?=[^\\W_])[{_CJK}]|(?:(?![{_CJK}])[^\\W_])+")


def tokens(text: str) -> list[str]:
    """The first MAX_TOKENS tokens of ``text`` (of its first MAX_CHARS characters), lower-cased."""
    return _tokens(text[:MAX_CHARS].lower())


def _tokens(lowered: str) -> list[str]:
    found: list[str] = []
    for match in _TOKEN.finditer(lowered):
        found.append(match.group())
        if len(found) == MAX_TOKENS:
            break
    return found


def _hashes(lowered: str) -> list[int]:
    words = _tokens(lowered)
    unigrams = [zlib.crc32(word.encode("utf-8")) for word in words]
    bigrams = [zlib.crc32(b" " + b.encode("utf-8"), first) for first, b in zip(unigrams, words[1:])]
    return unigrams + bigrams


def _contribution(lowered: str, weights: Sequence[float], mask: int) -> float:
    features = _hashes(lowered)
    if not features:
        return 0.0
    total = 0.0
    for feature in features:  # in order, as _text.c adds them
        total += weights[feature & mask]
    return total / math.sqrt(len(features))


_NATIVE = load("text")
ENGINE = "python" if _NATIVE is None else "c"


def hashes(text: str) -> list[int]:
    """The feature hashes of ``text``: its tokens', then its adjacent pairs', in order."""
    lowered = text[:MAX_CHARS].lower()
    return _NATIVE.hashes(lowered, MAX_TOKENS) if _NATIVE is not None else _hashes(lowered)


def contribution(text: str, weights: array, mask: int) -> float:
    """The learned part of ``text`` with a weight table (``array('f')`` of ``mask + 1`` floats)."""
    if not text:
        return 0.0
    lowered = text[:MAX_CHARS].lower()
    if _NATIVE is not None:
        return _NATIVE.contribution(lowered, weights, mask, MAX_TOKENS)
    return _contribution(lowered, weights, mask)


def table(bits: int, indices: Sequence[int], values: Sequence[float]) -> array:
    """A weight table of ``2**bits`` floats, zero but at ``indices``."""
    weights = array("f", bytes(4 << bits))
    for index, value in zip(indices, values):
        weights[index] = value
    return weights
