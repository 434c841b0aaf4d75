"""The scan engine: the C engine gives exactly what the pure-Python one gives, on any input.

The scorer's counts all come from one ``Scanner.scan`` call. The C engine (built at install
when a C compiler is present) is what keeps the request path cheap; the Python engine is the
reference and the fallback. These tests compare them on arbitrary views, needles, byte
classes, vocabularies, phrases and texts, including NUL bytes, non-ASCII text, overlapping
needles and needles longer than the text.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_litellm.scoring import measure
from stratum_litellm.scoring.scan import PyScanner, View

try:
    from stratum_litellm.scoring._bytescan import Scanner as CScanner
except ImportError:  # pragma: no cover - see test_c_parts.test_the_c_parts_are_built_where_a_compiler_is
    CScanner = None

needs_c = pytest.mark.skipif(CScanner is None, reason="the C engine is not built (no C compiler at install)")

# Small alphabets make needles, words and phrases actually occur in the texts.
ALPHABET = b"ab \n\x00.\xe2"
small_bytes = st.binary(max_size=6).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b))
needle = small_bytes.filter(bool)
table = st.one_of(
    st.none(),
    st.permutations(range(256)).map(bytes),
    st.lists(st.sampled_from(ALPHABET), min_size=256, max_size=256).map(bytes),
)
view = st.builds(
    View,
    table=table,
    delete=small_bytes,
    limit=st.one_of(st.none(), st.integers(0, 40)),
    needles=st.lists(needle, max_size=6).map(tuple),
    classes=st.lists(small_bytes, max_size=3).map(tuple),
)
word = st.binary(min_size=1, max_size=10).map(lambda b: bytes(b"ab.\xe2"[x % 4] for x in b))


@st.composite
def scanners(draw: st.DrawFn) -> tuple[dict, bytes]:
    views = draw(st.lists(view, min_size=1, max_size=5))
    tags = draw(st.integers(0, 4))
    words = draw(st.lists(word, max_size=12, unique=True))
    vocabulary = {w: tuple(draw(st.lists(st.integers(0, tags - 1), max_size=2))) if tags else () for w in words}
    phrases = []
    if words and tags:
        for _ in range(draw(st.integers(0, 4))):
            phrase_words = draw(st.lists(st.sampled_from(words), min_size=1, max_size=3, unique=True))
            phrases.append((phrase_words, draw(st.lists(st.integers(0, tags - 1), max_size=2))))
    spec = {
        "views": views,
        "vocabulary": vocabulary,
        "tags": tags,
        "words_view": draw(st.integers(-1, len(views) - 1)),
        "distinct_view": draw(st.integers(-1, len(views) - 1)),
        "phrases": phrases,
    }
    text = draw(st.binary(max_size=120).map(lambda b: bytes(ALPHABET[x % len(ALPHABET)] for x in b)) | st.binary(max_size=120))
    return spec, text


def normalised(result: tuple) -> tuple:
    counts, lengths, tags, distinct = result
    return list(counts), list(lengths), list(tags), distinct


@needs_c
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=scanners())
def test_c_engine_equals_python_engine(case: tuple[dict, bytes]) -> None:
    spec, text = case
    expected = normalised(PyScanner(**spec).scan(text))
    assert normalised(CScanner(**spec).scan(text)) == expected


@pytest.mark.parametrize("haystack,needles", [
    (b"aaaa", (b"aa",)),  # non-overlapping, leftmost first: 2, as bytes.count
    (b"abababa", (b"aba", b"bab")),
    (b"___ __", (b"__",)),
    (b"a\x00b\x00a\x00b", (b"\x00b", b"a\x00")),  # NUL bytes inside the text and the needles
    (b"short", (b"much longer than the text",)),
    (b" I I. II. III.", (b" II. ", b" I", b"I.")),
])
@needs_c
def test_needles_count_as_bytes_count_does(haystack: bytes, needles: tuple[bytes, ...]) -> None:
    spec = {"views": [View(needles=needles)], "vocabulary": {}}
    counts = CScanner(**spec).scan(haystack)[0]
    assert counts == [haystack.count(n) for n in needles]


@needs_c
def test_views_map_delete_and_limit_as_translate_does() -> None:
    upper = bytes.maketrans(b"abc", b"ABC")
    v = View(table=upper, delete=b" ", limit=9, needles=(b"AB", b"C"), classes=(b"ABC", b"xyz"))
    counts, lengths, *_ = CScanner([v], {}).scan(b"ab c abc abc")
    source = b"ab c abc abc"[:9].translate(upper, b" ")
    assert lengths == [len(source)]
    assert counts == [source.count(b"AB"), source.count(b"C"), len(source), 0]


@needs_c
def test_words_tags_and_phrases() -> None:
    vocabulary = {b"prove": (0,), b"theorem": (0, 1), b"step": (3,), b"lemma": (4,)}
    phrases = [([b"step", b"prove"], [2]), ([b"step", b"lemma"], [2])]  # "lemma" does not occur
    scanner = CScanner([View()], vocabulary, tags=5, words_view=0, phrases=phrases)
    _, _, tags, _ = scanner.scan(b"prove it step by step; prove the theorem")
    assert tags == [2, 1, 1, 1, 0]  # distinct words per tag; the phrase once; a word's own tag: present


@needs_c
@pytest.mark.parametrize("kwargs,message", [
    ({"views": [View(table=b"short")], "vocabulary": {}}, "256 bytes"),
    ({"views": [View(needles=(b"",))], "vocabulary": {}}, "non-empty"),
    ({"views": [View()], "vocabulary": {b"w": (5,)}, "tags": 2}, "tags must be in"),
    ({"views": [View()], "vocabulary": {b"w": ()}, "phrases": [([b"x"], [])]}, "not in the vocabulary"),
    ({"views": [View()], "vocabulary": {}, "words_view": 3}, "view index"),
])
def test_bad_specs_are_refused_by_both_engines(kwargs: dict, message: str) -> None:
    for engine in (PyScanner, CScanner):
        with pytest.raises((ValueError, TypeError)):
            engine(**kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        CScanner(**kwargs)


@needs_c
def test_scan_takes_bytes_only() -> None:
    with pytest.raises(TypeError, match="bytes"):
        CScanner([View()], {}).scan("text")  # type: ignore[arg-type]


@needs_c
def test_a_scanner_whose_construction_failed_refuses_to_scan() -> None:
    # Half-built (its views set up, its vocabulary not): scanning must raise, not read NULL.
    scanner = CScanner.__new__(CScanner)
    with pytest.raises(ValueError, match="tags"):
        scanner.__init__([View(needles=(b"ab",))], {b"word": (5,)}, tags=1)
    with pytest.raises(RuntimeError, match="not initialised"):
        scanner.scan(b"a word")


SCORER_PY_SCANNER = PyScanner(**measure._SCANNER_SPEC)
SCORER_C_SCANNER = CScanner(**measure._SCANNER_SPEC) if CScanner is not None else None


@needs_c
@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400) | st.text(alphabet="aeiou stpromve12.,;:{}()=+-*/^_`\n", max_size=400))
def test_the_scorer_measures_alike_with_either_engine(text: str) -> None:
    # The scorer's own views, vocabulary and phrases, run through both engines.
    data = text.encode("utf-8", "replace")
    expected = normalised(SCORER_PY_SCANNER.scan(data))
    assert normalised(SCORER_C_SCANNER.scan(data)) == expected
