"""The features of the score's learned part: the C version (``_text.c``) gives exactly what the
Python spec (``text._hashes`` and ``text._contribution``) does, on any text and weight table;
it refuses what is not a table of floats; its work and memory are bounded whatever the text's
size; and the public functions give the same results with or without it."""

from __future__ import annotations

import ctypes
import json
import math
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_litellm.scoring import text
from stratum_litellm.scoring.text import MAX_TOKENS

try:
    from stratum_litellm.scoring import _text as c_text
except ImportError:  # pragma: no cover - see test_the_c_features_are_built_where_the_other_c_parts_are
    c_text = None

needs_c = pytest.mark.skipif(c_text is None, reason="the C features (_text) are not built (no C compiler at install)")
ROOT = Path(__file__).resolve().parents[3]
ENV = {"PATH": "/usr/bin:/bin"}


@contextmanager
def max_tokens(n: int) -> Iterator[None]:
    """The Python spec with another MAX_TOKENS (it reads the module's at each call)."""
    kept = text.MAX_TOKENS
    text.MAX_TOKENS = n
    try:
        yield
    finally:
        text.MAX_TOKENS = kept


def bits(value: float) -> bytes:
    """A float's bits: equal results are equal here, NaN and the sign of zero included."""
    return struct.pack("<d", value)


# --- Strategies -------------------------------------------------------------------------

# The edges of the CJK ranges of text._CJK, each side, with the first and last letters in
# them where the edge itself is unassigned or punctuation (U+3041, U+D7A3, U+FAD9, U+2FA1D),
# letters just outside them (々 U+3005, 〇 U+3007, 〸 U+3038, U+A000, U+D7B0, ﬀ U+FB00,
# U+30000: runs, not single tokens), and characters the tokeniser must tell apart: `ー`
# (U+30FC, a letter: a token) and `・` (U+30FB, punctuation: none), digits and numbers of other
# scripts, an underscore (a word character of re, but no token's).
EDGES = [chr(c) for c in (0x3005, 0x3007, 0x3038, 0x303F, 0x3040, 0x3041, 0x3099, 0x309D, 0x30A0, 0x30FF, 0x3100,
                          0x33FF, 0x3400, 0x4DBF, 0x4DC0, 0x4DFF, 0x4E00, 0x9FFF, 0xA000, 0xABFF, 0xAC00, 0xD7A3,
                          0xD7AF, 0xD7B0, 0xF8FF, 0xF900, 0xFAD9, 0xFAFF, 0xFB00, 0x1FFFF, 0x20000, 0x2A6DF, 0x2F800,
                          0x2FA1D, 0x2FFFF, 0x30000, 0x3134A)]
SPECIAL = EDGES + list("ー・ _-.,'\n\t0123456789abcXYZé²½ǅⅫ١٢٣٤日本語のテストを한국어中文𠀀😀\u00a0\u200b\u0301")
characters = st.one_of(
    st.characters(codec="utf-8"),                                       # anything but surrogates
    st.characters(categories=["Cs"]),                                   # lone surrogates
    st.characters(min_codepoint=0x3000, max_codepoint=0xFFFF),          # kana, CJK, hangul and around
    st.characters(min_codepoint=0x1F000, max_codepoint=0x3FFFF, codec="utf-8"),  # emoji, the ideographic planes
    st.sampled_from(SPECIAL),
)
texts = st.one_of(st.text(), st.text(characters), st.text(st.sampled_from(SPECIAL)))
# Many short tokens: texts most often over MAX_TOKENS tokens (a random head, then a random
# run of words repeated, so that MAX_TOKENS falls anywhere in it).
WORDS = ["a", "bc", "def", "x1", "42", "日", "本", "ー", "・", "_", " ", " ", ".", "é", "𠀀", "😀", "\ud800", "한"]
long_texts = st.builds(lambda head, run, times: head + run * times, st.text(characters, max_size=40),
                       st.lists(st.sampled_from(WORDS), min_size=1, max_size=40).map("".join), st.integers(1, 1500))


@st.composite
def tables(draw: st.DrawFn) -> tuple[array, int]:
    """A table of float32 weights (NaN and infinities included) and a mask that fits it: most
    often 2**bits - 1 as the profiles use, sometimes any number, in a table that may be longer."""
    if draw(st.booleans()):
        mask = 2 ** draw(st.integers(0, 12)) - 1
    else:
        mask = draw(st.integers(0, 5000))
    size = mask + 1 + draw(st.sampled_from([0, 0, 0, 1, 7]))
    floats = st.floats(width=32)
    if size <= 64 and draw(st.booleans()):  # every weight drawn
        values = draw(st.lists(floats, min_size=size, max_size=size))
    else:  # a few drawn, spread over the table
        pool = draw(st.lists(floats, min_size=1, max_size=16))
        step = draw(st.integers(1, 1000))
        values = [pool[(i * step) % len(pool)] for i in range(size)]
    return array("f", values), mask


# --- The C version equals the spec ------------------------------------------------------


@needs_c
@settings(max_examples=3000, deadline=None)
@given(texts)
def test_c_hashes_equal_the_spec(lowered: str) -> None:
    assert c_text.hashes(lowered, MAX_TOKENS) == text._hashes(lowered)


@needs_c
@settings(max_examples=300, deadline=None)
@given(long_texts)
def test_c_hashes_equal_the_spec_past_max_tokens(lowered: str) -> None:
    assert c_text.hashes(lowered, MAX_TOKENS) == text._hashes(lowered)


@needs_c
@settings(max_examples=1000, deadline=None)
@given(st.one_of(texts, long_texts), st.integers(1, 2 * MAX_TOKENS))
def test_c_hashes_equal_the_spec_for_any_max_tokens(lowered: str, n: int) -> None:
    with max_tokens(n):
        assert c_text.hashes(lowered, n) == text._hashes(lowered)


@needs_c
@settings(max_examples=2000, deadline=None)
@given(st.one_of(texts, long_texts), tables())
def test_c_contribution_equals_the_spec_bit_for_bit(lowered: str, table: tuple[array, int]) -> None:
    weights, mask = table
    assert bits(c_text.contribution(lowered, weights, mask, MAX_TOKENS)) == bits(text._contribution(lowered, weights, mask))


@needs_c
@settings(max_examples=500, deadline=None)
@given(st.one_of(texts, long_texts), tables(), st.integers(1, 2 * MAX_TOKENS))
def test_c_contribution_equals_the_spec_for_any_max_tokens(lowered: str, table: tuple[array, int], n: int) -> None:
    weights, mask = table
    with max_tokens(n):
        assert bits(c_text.contribution(lowered, weights, mask, n)) == bits(text._contribution(lowered, weights, mask))


def words(n: int) -> str:
    return " ".join(f"w{i}" for i in range(n))


EXAMPLES = {
    "empty": "",
    "punctuation only": "?!... -- ,;: ()[]{} \"' /\\ @#$%^&*",
    "underscores": "snake_case __dunder__ _ __ a_b_c",
    "digits": "1 22 333 3.14 1,000 ²³ ½ ١٢٣ ⅻ",
    "cjk run": "日本語のテキストを解析する",
    "long vowel mark": "ラーメン ーー aー ーa",
    "middle dot": "テ・ス・ト ・・ a・b",
    "hangul": "한국어 텍스트",
    "mixed scripts": "Hello мир 世界 κόσμε नमस्ते עולם 123abc日本def 😀 𠀀𠀁x",
    "astral letters": "𝐀𝐁𝐂 𝒶𝒷 𐐀𐐁",
    "combining marks": "e\u0301 cafe\u0301",
    "lone surrogates": "a\ud800b \udfff c\udbff\udc00",
    "exactly MAX_TOKENS": words(MAX_TOKENS),
    "MAX_TOKENS + 1": words(MAX_TOKENS + 1),
    "MAX_TOKENS CJK + 1": "日" * (MAX_TOKENS + 1),
    "whitespace kinds": "a\u00a0b\u2003c\u3000d\te\nf",
}


@pytest.mark.parametrize("lowered", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_targeted_examples_give_what_the_spec_says(lowered: str) -> None:
    # The spec itself, on what the tokens must be, then the C version equal to it.
    tokens = text._tokens(lowered)
    expected = [zlib.crc32(t.encode()) for t in tokens] + [zlib.crc32(f"{a} {b}".encode()) for a, b in zip(tokens, tokens[1:])]
    assert text._hashes(lowered) == expected
    weights = array("f", [((i * 2654435761) % 1000 - 500) / 97.0 for i in range(1 << 10)])
    if c_text is None:
        pytest.skip("the C features (_text) are not built")
    assert c_text.hashes(lowered, MAX_TOKENS) == expected
    assert bits(c_text.contribution(lowered, weights, 1023, MAX_TOKENS)) == bits(text._contribution(lowered, weights, 1023))


def test_the_tokens_of_the_examples() -> None:
    # What the C version is compared against, pinned: a change of the spec shows here too.
    assert text._tokens(EXAMPLES["punctuation only"]) == []
    assert text._tokens(EXAMPLES["underscores"]) == ["snake", "case", "dunder", "a", "b", "c"]
    assert text._tokens(EXAMPLES["digits"]) == ["1", "22", "333", "3", "14", "1", "000", "²³", "½", "١٢٣", "ⅻ"]
    assert text._tokens("ラーメン ・ aー") == ["ラ", "ー", "メ", "ン", "a", "ー"]
    assert text._tokens("abc日本def") == ["abc", "日", "本", "def"]
    assert text._tokens("a\ud800b") == ["a", "b"]
    assert len(text._tokens(EXAMPLES["MAX_TOKENS + 1"])) == MAX_TOKENS
    assert len(text._hashes(EXAMPLES["exactly MAX_TOKENS"])) == 2 * MAX_TOKENS - 1


@needs_c
def test_no_tokens_no_features_and_nothing_to_add() -> None:
    weights = array("f", [float("nan")] * 16)
    for lowered in ("", " ", "_", "・・", "\ud800"):
        assert c_text.hashes(lowered, MAX_TOKENS) == []
        assert bits(c_text.contribution(lowered, weights, 15, MAX_TOKENS)) == bits(0.0)
    # max_tokens 0: no tokens read at all.
    assert c_text.hashes("some words", 0) == []
    assert c_text.contribution("some words", weights, 15, 0) == 0.0


@needs_c
def test_c_hashes_do_not_lower_case() -> None:
    # The caller lower-cases (the spec receives lower-cased text): upper case hashes apart.
    assert c_text.hashes("Hello", MAX_TOKENS) == text._hashes("Hello") != text._hashes("hello")


@needs_c
def test_the_other_float_buffers_are_read_alike() -> None:
    # Any C-contiguous one-dimensional buffer of native floats: a memoryview, a ctypes array.
    values = [0.5, -1.25, 3.0, 1e-3, -7.0, 2.5, 0.0, 9.75]
    lowered = "the quick brown fox jumps over the lazy dog"
    expected = text._contribution(lowered, array("f", values), 7)
    as_ctypes = (ctypes.c_float * 8)(*values)  # format "<f" (or ">f" on a big-endian machine)
    for weights in (memoryview(array("f", values)), as_ctypes, memoryview(array("f", values + [1.0]))[:8]):
        assert bits(c_text.contribution(lowered, weights, 7, MAX_TOKENS)) == bits(expected)


# --- Bad arguments ----------------------------------------------------------------------


def big_endian_floats() -> object:
    other = ctypes.c_float.__ctype_be__ if sys.byteorder == "little" else ctypes.c_float.__ctype_le__
    return (other * 16)()


BAD_CONTRIBUTIONS = {
    "doubles": (("a b", array("d", [0.0] * 16), 15, MAX_TOKENS), TypeError, "C floats"),
    "ints": (("a b", array("i", [0] * 16), 15, MAX_TOKENS), TypeError, "C floats"),
    "bytes": (("a b", bytes(64), 15, MAX_TOKENS), TypeError, "C floats"),
    "a list": (("a b", [0.0] * 16, 15, MAX_TOKENS), TypeError, "buffer of C floats"),
    "two dimensions": (("a b", memoryview(array("f", [0.0] * 16)).cast("B").cast("f", (4, 4)), 15, MAX_TOKENS),
                       TypeError, "one-dimensional"),
    "the other byte order": (("a b", big_endian_floats(), 15, MAX_TOKENS), TypeError, "C floats"),
    "a short table": (("a b", array("f", [0.0] * 15), 15, MAX_TOKENS), ValueError, r"mask \+ 1"),
    "an empty table": (("a b", array("f"), 0, MAX_TOKENS), ValueError, r"mask \+ 1"),
    "a huge mask": (("a b", array("f", [0.0] * 16), 2**70, MAX_TOKENS), ValueError, r"mask \+ 1"),
    "a negative mask": (("a b", array("f", [0.0] * 16), -1, MAX_TOKENS), ValueError, "negative"),
    "a very negative mask": (("a b", array("f", [0.0] * 16), -(2**70), MAX_TOKENS), ValueError, "negative"),
    "a float mask": (("a b", array("f", [0.0] * 16), 15.0, MAX_TOKENS), TypeError, "mask must be an int"),
    "negative max_tokens": (("a b", array("f", [0.0] * 16), 15, -1), ValueError, "max_tokens"),
    "absurd max_tokens": (("a b", array("f", [0.0] * 16), 15, 1 << 20), ValueError, "max_tokens"),
    "huge max_tokens": (("a b", array("f", [0.0] * 16), 15, 2**80), ValueError, "max_tokens"),
    "a float max_tokens": (("a b", array("f", [0.0] * 16), 15, 400.0), TypeError, "max_tokens"),
    "bytes for text": ((b"a b", array("f", [0.0] * 16), 15, MAX_TOKENS), TypeError, "str"),
    "None for text": ((None, array("f", [0.0] * 16), 15, MAX_TOKENS), TypeError, "str"),
    "three arguments": (("a b", array("f", [0.0] * 16), 15), TypeError, "4 arguments"),
}


@needs_c
@pytest.mark.parametrize("args,error,message", BAD_CONTRIBUTIONS.values(), ids=BAD_CONTRIBUTIONS.keys())
def test_c_contribution_refuses_bad_arguments(args: tuple, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        c_text.contribution(*args)
    # The table's buffer is released on every path: an array exporting one cannot grow.
    if isinstance(args[1], array):
        args[1].append(args[1][0] if args[1] else 0)


@needs_c
def test_c_contribution_releases_the_buffer_after_success() -> None:
    weights = array("f", [1.0] * 16)
    assert c_text.contribution("a b c", weights, 15, MAX_TOKENS) > 0
    weights.append(0.0)


@needs_c
@pytest.mark.parametrize("args,error", [
    (("a b", -1), ValueError), (("a b", (1 << 16) + 1), ValueError), (("a b", 2**100), ValueError),
    (("a b", "400"), TypeError), ((b"a b", MAX_TOKENS), TypeError), ((["a"], MAX_TOKENS), TypeError),
    (("a b",), TypeError), (("a b", MAX_TOKENS, 1), TypeError),
])
def test_c_hashes_refuse_bad_arguments(args: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        c_text.hashes(*args)


@needs_c
def test_c_hashes_take_the_largest_max_tokens() -> None:
    # 1 << 16 tokens: the hashes go to the heap (more than the stack's 512), still exact.
    lowered = "日" * 70_000 + " 本"
    with max_tokens(1 << 16):
        assert c_text.hashes(lowered, 1 << 16) == text._hashes(lowered)


# --- Bounded work and memory ------------------------------------------------------------


@needs_c
def test_a_megabyte_of_text_is_read_only_up_to_max_tokens() -> None:
    head = words(MAX_TOKENS + 10)
    early = head + " " + "-" * 1_000_000  # the tokens first, then a megabyte without any
    late = "-" * 1_000_000 + " " + head  # the same tokens after a megabyte: the whole text is scanned
    assert c_text.hashes(early, MAX_TOKENS) == c_text.hashes(late, MAX_TOKENS) == text._hashes(head)

    def fastest(lowered: str) -> float:
        best = math.inf
        for _ in range(7):
            start = time.perf_counter()
            c_text.hashes(lowered, MAX_TOKENS)
            best = min(best, time.perf_counter() - start)
        return best

    # Stopping after MAX_TOKENS, the early text costs what its head does: far less than the
    # megabyte scanned before the tokens of the late one (about 100 times less here).
    assert fastest(early) * 10 < fastest(late)
    # Memory: the hashes of MAX_TOKENS tokens (on the stack) and the result list, nothing in
    # proportion to the text (8 MB here: astral characters take 4 bytes each).
    huge = "𝐀 " * 1_000_000
    weights = array("f", [0.0] * 1024)
    tracemalloc.start()  # (it traces PyMem_Malloc, where the C version takes its memory)
    try:
        c_text.hashes(huge, MAX_TOKENS)
        c_text.contribution(huge, weights, 1023, MAX_TOKENS)
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 100_000, peak  # the list of 799 ints, about 30 KB
        tracemalloc.reset_peak()
        c_text.contribution(huge, weights, 1023, 1 << 16)  # the largest max_tokens: its hashes on the heap
        _, peak = tracemalloc.get_traced_memory()
        assert peak < 600_000, peak  # 2 * 4 bytes * 2**16 = 512 KB
    finally:
        tracemalloc.stop()


# --- The public functions, with and without the C version --------------------------------

PROMPTS = ["hi", "Prove that there are infinitely many primes, step by step.", "日本の首都はどこですか？",
           "def f(x):\n    return x ** 2\n# WHY is this slow? SELECT * FROM t;", "İstanbul ΣΊΣΥΦΟΣ STRASSE Straße",
           "Ünïcödé ǅungla ﬁne 𝐀𝐁𝐂", "", "   ", words(MAX_TOKENS + 50).upper(), "a\ud800B"]


@pytest.mark.parametrize("prompt", PROMPTS)
def test_the_public_functions_give_the_same_with_either_engine(prompt: str, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = text.table(10, range(0, 1024, 3), [((i * 37) % 19 - 9) / 7.0 for i in range(0, 1024, 3)])
    results = {}
    for engine in ("python", "c"):
        if engine == "c" and c_text is None:
            pytest.skip("the C features (_text) are not built")
        monkeypatch.setattr(text, "_NATIVE", None if engine == "python" else c_text)
        results[engine] = (text.hashes(prompt), bits(text.contribution(prompt, weights, 1023)))
    assert results["python"] == results["c"]
    # Lower-cased by the public functions, by str.lower.
    assert results["python"][0] == text._hashes(prompt.lower())


SCORE = ("import json, sys; from stratum_litellm.scoring import text; w = text.table(10, range(1024), "
         "[(i % 13 - 6) / 5 for i in range(1024)]); prompts = json.loads(sys.argv[1]); "
         "print(json.dumps([text.ENGINE, [text.hashes(p) for p in prompts], "
         "[text.contribution(p, w, 1023).hex() for p in prompts]]))")


def public_results(switch: str) -> list:
    prompts = [p for p in PROMPTS if "\ud800" not in p]  # (JSON cannot carry a lone surrogate)
    out = subprocess.run([sys.executable, "-c", SCORE, json.dumps(prompts)], capture_output=True, text=True, check=True,
                         env={**ENV, "STRATUM_PURE_PYTHON": switch}, cwd=ROOT)
    return json.loads(out.stdout)


def test_stratum_pure_python_switches_the_c_features_off_with_the_same_results() -> None:
    on, off, only_text = public_results("0"), public_results("1"), public_results("text")
    assert off[0] == only_text[0] == "python"
    assert on[1:] == off[1:] == only_text[1:]
    if c_text is not None:
        assert on[0] == "c"
        assert public_results("scan")[0] == "c"  # the features need no other C part


def test_the_c_features_are_built_where_the_other_c_parts_are() -> None:
    # Like test_c_parts.test_the_c_parts_are_built_where_a_compiler_is: a failed build of an
    # optional extension only warns at install.
    from stratum_litellm.scoring import scan

    if scan.ENGINE != "c" and c_text is None:
        pytest.skip("no C part is built here: the Python versions are expected")
    assert c_text is not None, "_text did not build; run `pip install -v -e .` to see why"
