"""The measurements of a text: named counts, the same from the C code as from the Python reference."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import given
from hypothesis import strategies as st

from stratum_litellm.scoring import measure
from stratum_litellm.scoring.measure import FIELDS, Counts, measure_python

try:
    from stratum_litellm.scoring._bytescan import Scanner as CScanner
    from stratum_litellm.scoring._measure import Measurer
except ImportError:  # pragma: no cover - see test_c_parts.test_the_c_parts_are_built_where_a_compiler_is
    CScanner = Measurer = None

needs_c = pytest.mark.skipif(Measurer is None, reason="the C measurements are not built (no C compiler at install)")
# Built here, whatever STRATUM_PURE_PYTHON says: these tests are about the C code itself.
C_SCANNER = CScanner(**measure._SCANNER_SPEC) if CScanner is not None else None
C_MEASURER = Measurer(C_SCANNER, measure._LAYOUT) if Measurer is not None else None


def test_counts_are_named_and_empty_text_counts_nothing() -> None:
    assert FIELDS == Counts._fields and measure.measure("") == Counts() == measure_python("")
    assert all(v == 0 for v in Counts())


@pytest.mark.parametrize("text,field,expected", [
    ("Statement 1 | Every group is abelian. Statement 2 | Some ring is a field.", "enumerations", 2),
    ("How many apples are left?", "compute_asks", 1),
    ("Solve 3x + 4 = 19.", "math_notation", 2),
    ("日本の首都はどこですか？東京ですか？", "questions", 2),
    ("She sold 20% of them and kept 1/4.", "relations", 2),
    ("prices rose from 1,200 to 1,500 and 1,200 again", "numbers", 2),
])
def test_measurements_count_what_they_say(text: str, field: str, expected: int) -> None:
    assert getattr(measure.measure(text), field) == expected
    assert getattr(measure_python(text), field) == expected


# Texts made of what the measurements look for: LaTeX commands (at the very end too, or
# followed by a letter), typographic quotes, trailing semicolons and symbols, SQL, labels,
# roman numerals, CJK stops, math symbols, lone surrogates.
PIECES = ["\\frac", "\\le", "\\leq", "\\lex", "\\pi", "\\\\sum", "\\", "x", "{", "}", ";", " ;\n", "; ", "\u2019",
          "\u2018", "\u201c", "SELECT ", " FROM ", "select", "from", "where", "*", "_", "__", "```", "`", "?", "\uff1f",
          "\u3002", "%", "3/4", "1 + 2 = 3", "statement 1", "step 2", " II. ", "(iii)", "\u2211", "\u00d7", "\ud800",
          "The Court", " I ", "\n", "def f():", "if (a) {\n", "x_1", "twice", "how many", "12,000"]
measured_texts = st.text(max_size=300) | st.lists(st.sampled_from(PIECES), max_size=40).map("".join)


@needs_c
@settings(max_examples=600, deadline=None)
@given(text=measured_texts)
def test_the_c_measurements_equal_the_python_reference(text: str) -> None:
    expected = measure_python(text)
    got = C_MEASURER.measure(text)
    assert type(got) is Counts and got == expected
    assert [type(x) for x in got] == [type(x) for x in expected]  # ints stay ints, the token estimate a float


@needs_c
def test_c_measurements_refuse_a_layout_that_does_not_match_by_name() -> None:
    layout = dict(measure._LAYOUT)
    del layout["question"]
    with pytest.raises(ValueError, match="question"):
        Measurer(C_SCANNER, layout)
    with pytest.raises(ValueError, match="new_count"):  # a count the C code would not read
        Measurer(C_SCANNER, {**measure._LAYOUT, "new_count": 3})
    with pytest.raises(ValueError, match="cjk_stops"):
        Measurer(C_SCANNER, {**measure._LAYOUT, "cjk_stops": slice(0, 10**6)})
    with pytest.raises(ValueError, match="counts"):
        Measurer(C_SCANNER, {**measure._LAYOUT, "counts": list})
    with pytest.raises(ValueError, match="tag_label"):
        Measurer(C_SCANNER, {**measure._LAYOUT, "tag_label": -1})
    with pytest.raises(TypeError, match="str"):
        C_MEASURER.measure(b"bytes")


@pytest.mark.skipif(measure.MEASURE_ENGINE != "c", reason="the C measurements are not in use")
def test_a_c_build_that_does_not_match_falls_back_to_python(monkeypatch: pytest.MonkeyPatch,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    # A stale build must not stop the gateway from starting: the Python measurements take over.
    monkeypatch.setattr(measure, "_LAYOUT", {**measure._LAYOUT, "fields": 10**6})
    assert measure._load_measurer() is None
    assert "C measurements unusable" in caplog.text and "fields" in caplog.text
