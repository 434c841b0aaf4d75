"""The scan engine: the C engine gives exactly what the pure-Python one gives, on any input.

The scorer's counts all come from one ``Scanner.scan`` call. The C engine (built at install
when a C compiler is present) is what keeps the request path cheap; the Python engine is the
reference and the fallback. These tests compare them on arbitrary views, needles, byte
classes, vocabularies, phrases and texts, including NUL bytes, non-ASCII text, overlapping
needles and needles longer than the text.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_litellm.scoring import measure as scoring_features, scan as bytescan, scorer as scoring
from stratum_litellm.scoring.scan import PyScanner, View

ROOT = Path(__file__).resolve().parents[2]

try:
    from stratum_litellm.scoring._bytescan import Scanner as CScanner
except ImportError:  # pragma: no cover - see test_the_c_engine_is_built_where_a_compiler_is
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


def test_the_c_parts_are_built_where_a_compiler_is() -> None:
    # `make test` installs the package on a machine with gcc: the fast engine and kernel must
    # be there, or a failed build (it is optional, so pip only warns) would go unnoticed.
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine: the Python versions are expected")
    assert bytescan.ENGINE == "c", "stratum_litellm.scoring._bytescan did not build; run `pip install -v -e .` to see why"
    assert scoring.KERNEL == "c", "stratum_litellm.scoring._score_kernel did not build; run `pip install -v -e .` to see why"
    assert scoring_features.MEASURE_ENGINE == "c", (
        "stratum_litellm.scoring._measure did not build; run `pip install -v -e .` to see why")


@pytest.mark.parametrize("switch,expected", [("1", "python python python"), ("0", None)])
def test_stratum_pure_python_switches_every_c_part_off(switch: str, expected: str | None) -> None:
    code = ("from stratum_litellm.scoring import scan as bytescan, scorer as scoring, measure as f; "
            "print(bytescan.ENGINE, f.MEASURE_ENGINE, scoring.KERNEL)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"STRATUM_PURE_PYTHON": switch, "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    if expected is None:  # switched on: whatever was built ("0" means no switch)
        expected = f"{bytescan.ENGINE} {scoring_features.MEASURE_ENGINE} {scoring.KERNEL}"
    assert out.stdout.strip() == expected


SCORER_PY_SCANNER = PyScanner(**scoring_features._SCANNER_SPEC)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=400) | st.text(alphabet="aeiou stpromve12.,;:{}()=+-*/^_`\n", max_size=400))
def test_the_scorer_measures_alike_with_either_engine(text: str) -> None:
    # The scorer's own views, vocabulary and phrases, run through both engines.
    data = text.encode("utf-8", "replace")
    expected = normalised(SCORER_PY_SCANNER.scan(data))
    assert normalised(scoring_features._SCANNER.scan(data)) == expected


needs_c_measure = pytest.mark.skipif(scoring_features.MEASURE_ENGINE != "c",
                                     reason="the C measurements are not built (no C compiler at install)")
# Texts made of what the measurements look for: LaTeX commands (at the very end too, or
# followed by a letter), typographic quotes, trailing semicolons and symbols, SQL, labels,
# roman numerals, CJK stops, math symbols, lone surrogates.
PIECES = ["\\frac", "\\le", "\\leq", "\\lex", "\\pi", "\\\\sum", "\\", "x", "{", "}", ";", " ;\n", "; ", "\u2019",
          "\u2018", "\u201c", "SELECT ", " FROM ", "select", "from", "where", "*", "_", "__", "```", "`", "?", "\uff1f",
          "\u3002", "%", "3/4", "1 + 2 = 3", "statement 1", "step 2", " II. ", "(iii)", "\u2211", "\u00d7", "\ud800",
          "The Court", " I ", "\n", "def f():", "if (a) {\n", "x_1", "twice", "how many", "12,000"]
measured_texts = st.text(max_size=300) | st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@needs_c_measure
@settings(max_examples=600, deadline=None)
@given(text=measured_texts)
def test_the_c_measurements_equal_the_python_reference(text: str) -> None:
    expected = scoring_features.measure_python(text)
    got = scoring_features.measure(text)
    assert got == expected
    assert [type(x) for x in got] == [type(x) for x in expected]  # ints stay ints, the token estimate a float


@needs_c_measure
def test_c_measurements_refuse_a_bad_layout_with_the_key() -> None:
    from stratum_litellm.scoring._measure import Measurer

    layout = dict(scoring_features._LAYOUT)
    del layout["question"]
    with pytest.raises(ValueError, match="question"):
        Measurer(scoring_features._SCANNER, layout)
    with pytest.raises(ValueError, match="cjk_stops"):
        Measurer(scoring_features._SCANNER, {**scoring_features._LAYOUT, "cjk_stops": slice(0, 10**6)})
    with pytest.raises(ValueError, match="tag_label"):
        Measurer(scoring_features._SCANNER, {**scoring_features._LAYOUT, "tag_label": -1})
    with pytest.raises(TypeError, match="str"):
        scoring_features._MEASURER.measure(b"bytes")


@needs_c_measure
def test_a_c_build_that_does_not_match_falls_back_to_python(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # A stale build must not stop the gateway from starting: the Python measurements take over.
    monkeypatch.setattr(scoring_features, "_LAYOUT", {**scoring_features._LAYOUT, "fields": 10**6})
    assert scoring_features._load_measurer() is None
    assert "C measurements unusable" in caplog.text and "fields" in caplog.text


def gcc_or_skip() -> str:
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc: this test builds C sources itself")
    return gcc


def compile_c_part(gcc: str, name: str, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """Build stratum_litellm/scoring/<name>.c as a loadable module for this interpreter, with flags."""
    return subprocess.run([gcc, *flags, "-shared", "-fPIC", f"-I{sysconfig.get_paths()['include']}",
                           str(ROOT / "stratum_litellm" / "scoring" / f"{name}.c"), "-o", str(out)],
                          capture_output=True, text=True)


def test_c_engine_is_memory_safe_under_address_sanitizer(tmp_path: Path) -> None:
    # The engine runs in the gateway's request path: an out-of-bounds read there would not
    # fail a comparison, it would crash or leak memory contents. Build it with ASan and UBSan
    # and run it on thousands of random specs and texts (tests/support/asan_scan.py).
    gcc = gcc_or_skip()
    runtimes = []
    for lib in ("libasan.so", "libubsan.so"):
        path = subprocess.run([gcc, f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
        if not Path(path).is_file():
            pytest.skip(f"gcc has no {lib}")
        runtimes.append(path)
    built = {}
    for name in ("_bytescan", "_measure"):  # the measurements read the scan's results in place
        built[name] = tmp_path / f"{name}_asan.so"
        build = compile_c_part(gcc, name, built[name], "-g", "-O1", "-fsanitize=address,undefined",
                               "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer")
        assert build.returncode == 0, build.stderr[-3000:]
    # PYTHONMALLOC=malloc: the engine's PyMem buffers come from malloc, which ASan watches.
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": ":".join(runtimes), "ASAN_OPTIONS": "detect_leaks=0",
           "PYTHONMALLOC": "malloc",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "asan_scan.py"), str(built["_bytescan"]),
                          str(built["_measure"]), "600"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "clean", run.stderr[-4000:]


@pytest.mark.parametrize("name", ["_bytescan", "_measure", "_score_kernel"])
def test_the_c_parts_compile_without_warnings(name: str, tmp_path: Path) -> None:
    # Warnings are where portability bugs hide (other compilers, other Python versions).
    run = compile_c_part(gcc_or_skip(), name, tmp_path / f"{name}.so", "-O2", "-Wall", "-Wextra", "-Werror")
    assert run.returncode == 0, run.stderr[-3000:]


def test_the_source_distribution_holds_everything_the_c_parts_include(tmp_path: Path) -> None:
    # A wheel built from the sdist (pip does that where no wheel fits) compiles the C parts
    # there: a missing header would drop them silently (they are optional) and leave pure Python.
    import re
    import tarfile

    pytest.importorskip("setuptools", reason="building the sdist needs setuptools in this environment")
    egg_info = ROOT / "stratum_litellm.egg-info"
    existed = egg_info.exists()
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path)], cwd=ROOT, check=True,
                   capture_output=True)
    if not existed:  # setup.py leaves it behind
        shutil.rmtree(egg_info, ignore_errors=True)
    (archive,) = tmp_path.glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {Path(n).name for n in tar.getnames()}
    for source in (ROOT / "stratum_litellm" / "scoring").glob("*.c"):
        assert source.name in names
        for header in re.findall(r'#include "([^"]+)"', source.read_text()):
            assert header in names, f"{source.name} includes {header}, which the sdist lacks"
