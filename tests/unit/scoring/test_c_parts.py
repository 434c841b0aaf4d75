"""The optional C parts of the scorer: built where a compiler is, switched off on demand,
memory-safe, warning-free, shipped in the source distribution, and scoring exactly as the
pure-Python scorer does."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stratum_litellm.scoring import scorer
from stratum_litellm.scoring.measure import FIELDS, Counts
from stratum_litellm.scoring.native import PARTS
from stratum_litellm.scoring.scorer import DIMENSIONS, score_text

ROOT = Path(__file__).resolve().parents[3]
ENV = {"PATH": "/usr/bin:/bin"}
ENGINES = ("from stratum_litellm.scoring import measure, scan, scorer; "
           "print(scan.ENGINE, measure.MEASURE_ENGINE, scorer.KERNEL)")


def engines(switch: str) -> str:
    """The scan engine, measurements and kernel a fresh process uses with STRATUM_PURE_PYTHON=switch."""
    out = subprocess.run([sys.executable, "-c", ENGINES], capture_output=True, text=True, check=True,
                         env={**ENV, "STRATUM_PURE_PYTHON": switch}, cwd=ROOT)
    return out.stdout.strip()


def test_the_c_parts_are_built_where_a_compiler_is() -> None:
    # `make test` installs the package on a machine with gcc: the C parts must be there, or a
    # failed build (it is optional, so pip only warns) would go unnoticed. Checked in a fresh
    # process with every part switched on, whatever this one runs with.
    if not (shutil.which("cc") or shutil.which("gcc")):
        pytest.skip("no C compiler on this machine: the Python versions are expected")
    assert engines("0") == "c c c", "a C part did not build; run `pip install -v -e .` to see why"


@pytest.mark.parametrize("switch,expected", [
    ("1", "python python python"), ("true", "python python python"),
    ("scan", "python python c"),  # the measurements read the C scan's results: off with it
    ("measure", "c python c"), ("kernel", "c c python"), ("scan,kernel", "python python python"),
])
def test_stratum_pure_python_switches_c_parts_off(switch: str, expected: str) -> None:
    if engines("0") != "c c c":
        pytest.skip("the C parts are not built")
    assert engines(switch) == expected


PROMPTS = ["hi", "Prove that there are infinitely many primes, step by step.",
           "A train leaves at 3 pm going 60 mph; a second leaves 2 hours later at 80 mph. When does it catch up?",
           "def f(x):\n    return x ** 2\n# why is this slow? SELECT * FROM t;", "日本の首都はどこですか？",
           "Statement 1 | \\frac{1}{2} ≤ x. Statement 2 | the court’s ruling was not final." * 40]
SCORES = ("import json, sys; from stratum_litellm.scoring.scorer import score_text; "
          "print(json.dumps([[s.value, dict(s.parts), dict(s.levels)] for s in map(score_text, json.loads(sys.argv[1]))]))")


@pytest.mark.parametrize("switch", ["0", "1", "measure", "kernel"])
def test_every_combination_of_c_parts_scores_alike(switch: str) -> None:
    # Value, parts and levels, bit for bit: thresholds and figures measured with one
    # combination are served by another.
    out = subprocess.run([sys.executable, "-c", SCORES, json.dumps(PROMPTS)], capture_output=True, text=True,
                         check=True, env={**ENV, "STRATUM_PURE_PYTHON": switch}, cwd=ROOT)
    here = [[s.value, dict(s.parts), dict(s.levels)] for s in map(score_text, PROMPTS)]
    assert json.loads(out.stdout) == json.loads(json.dumps(here))


try:
    from stratum_litellm.scoring import _score_kernel as c_kernel
except ImportError:  # pragma: no cover - see test_the_c_parts_are_built_where_a_compiler_is
    c_kernel = None

needs_c_kernel = pytest.mark.skipif(c_kernel is None, reason="the C kernel is not built (no C compiler at install)")
# Counts are non-negative: whole numbers from the scan, fractions once segments are weighted.
count = st.one_of(st.just(0), st.integers(0, 10**6), st.floats(0, 1e12, allow_nan=False),
                  st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 1e-300]))
counts = st.lists(count, min_size=len(FIELDS), max_size=len(FIELDS)).map(Counts._make)
weights = st.lists(st.floats(0, 1e6, allow_nan=False), min_size=len(DIMENSIONS), max_size=len(DIMENSIONS))


@needs_c_kernel
@settings(max_examples=2000, deadline=None)
@given(counts=counts, context=st.floats(0, 1), weights=weights, bias=st.floats(-200, 200))
def test_c_kernel_equals_the_python_spec(counts: Counts, context: float, weights: list[float], bias: float) -> None:
    value, parts, levels = c_kernel.score(counts, context, tuple(weights), bias)
    assert (value, parts, levels) == scorer._score(counts, context, weights, bias)
    assert 0.0 <= value <= 1.0


@needs_c_kernel
def test_c_kernel_reads_the_counts_and_makes_the_dimensions_of_the_spec() -> None:
    # The scorer uses the C kernel only where these match; a build for other ones is left out.
    assert (c_kernel.FIELDS, c_kernel.DIMENSIONS) == (FIELDS, DIMENSIONS)


@needs_c_kernel
def test_a_c_kernel_for_other_dimensions_is_left_out(monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(scorer, "DIMENSIONS", (*DIMENSIONS, "novelty"))
    monkeypatch.setattr(scorer, "load", lambda part: c_kernel)
    assert scorer._load_kernel() is scorer._score
    assert "C score kernel built for other counts or dimensions" in caplog.text


@needs_c_kernel
@pytest.mark.parametrize("args,error", [
    ((Counts()[:-1], 0.0, (1.0,) * len(DIMENSIONS), 0.0), ValueError),  # a count missing
    ((Counts(), 0.0, (1.0,) * 3, 0.0), ValueError),
    ((["x"] * len(FIELDS), 0.0, (1.0,) * len(DIMENSIONS), 0.0), TypeError),
    ((Counts(), None, (1.0,) * len(DIMENSIONS), 0.0), TypeError),
    ((None, 0.0, (1.0,) * len(DIMENSIONS), 0.0), TypeError),
])
def test_c_kernel_refuses_bad_arguments(args: tuple, error: type[Exception]) -> None:
    with pytest.raises(error):
        c_kernel.score(*args)


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
    # and run it on thousands of random specs and texts (tests/support/asan_scan.py); the
    # learned part's features (_text) too, on random texts and weight tables.
    gcc = gcc_or_skip()
    runtimes = []
    for lib in ("libasan.so", "libubsan.so"):
        path = subprocess.run([gcc, f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
        if not Path(path).is_file():
            pytest.skip(f"gcc has no {lib}")
        runtimes.append(path)
    built = {}
    # (the measurements read the scan's results in place; the features stand alone)
    for name in ("_bytescan", "_measure", "_text"):
        built[name] = tmp_path / f"{name}_asan.so"
        build = compile_c_part(gcc, name, built[name], "-g", "-O1", "-fsanitize=address,undefined",
                               "-fno-sanitize-recover=undefined", "-fno-omit-frame-pointer")
        assert build.returncode == 0, build.stderr[-3000:]
    # PYTHONMALLOC=malloc: the engine's PyMem buffers come from malloc, which ASan watches.
    env = {"PATH": "/usr/bin:/bin", "LD_PRELOAD": ":".join(runtimes), "ASAN_OPTIONS": "detect_leaks=0",
           "PYTHONMALLOC": "malloc",
           "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
    run = subprocess.run([sys.executable, str(ROOT / "tests" / "support" / "asan_scan.py"), str(built["_bytescan"]),
                          str(built["_measure"]), "600", str(built["_text"])],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0 and run.stdout.strip() == "clean", run.stderr[-4000:]


@pytest.mark.parametrize("name", sorted(PARTS.values()))
def test_the_c_parts_compile_without_warnings(name: str, tmp_path: Path) -> None:
    # Warnings are where portability bugs hide (other compilers, other Python versions).
    run = compile_c_part(gcc_or_skip(), name, tmp_path / f"{name}.so", "-O2", "-Wall", "-Wextra", "-Werror")
    assert run.returncode == 0, run.stderr[-3000:]


def test_the_source_distribution_holds_everything_the_c_parts_include(tmp_path: Path) -> None:
    # A wheel built from the sdist (pip does that where no wheel fits) compiles the C parts
    # there: a missing header would drop them silently (they are optional) and leave pure Python.
    # Built from a copy of what the build reads, so the working tree is never written to.
    pytest.importorskip("setuptools", reason="building the sdist needs setuptools in this environment")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "stratum_litellm", source / "stratum_litellm",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.egg-info"))
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "-d", str(tmp_path / "dist")], cwd=source, check=True,
                   capture_output=True)
    (archive,) = (tmp_path / "dist").glob("*.tar.gz")
    with tarfile.open(archive) as tar:
        names = {Path(n).name for n in tar.getnames()}
    for c_source in (ROOT / "stratum_litellm" / "scoring").glob("*.c"):
        assert c_source.name in names
        for header in re.findall(r'#include "([^"]+)"', c_source.read_text()):
            assert header in names, f"{c_source.name} includes {header}, which the sdist lacks"
