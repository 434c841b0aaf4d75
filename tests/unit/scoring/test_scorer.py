"""The complexity scorer: bounded, total, explainable, and sane on the cases that matter."""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stratum_litellm.scoring
from stratum_litellm.scoring import scorer as scoring
from stratum_litellm.scoring.measure import measure
from stratum_litellm.scoring.scorer import DIMENSIONS, Score, Scorer, default_weights, levels, score_text
from stratum_litellm.scoring.view import MAX_SCANNED_CHARS, RequestView

HARD_PROSE = (
    "I need a careful analysis. Compare the consistency guarantees of Raft and Paxos under network "
    "partitions, and prove that neither can guarantee liveness when a majority of nodes is unreachable. "
    "Analyse the trade-offs for a geo-replicated database that must not lose acknowledged writes, must keep "
    "read latency under 50 ms, and cannot rely on synchronised clocks. Explain why each assumption matters, "
    "except where the protocol already handles it, and justify your recommendation step by step."
)
HARD_QUESTION = "Prove that there are infinitely many primes, then compare two different proofs and explain why each step is valid."
GREETINGS = ["hi there!", "thanks", "hello", "ok", "Good morning :)", "thank you so much!", "hey"]
PLAIN = "Please tell me something nice about the weather in the city today."

CODE = {
    "python": "def area(r):\n    return 3.14 * r * r\n",
    "javascript": "function add(a, b) {\n  return a + b;\n}\n",
    "typescript": "const greet = (name: string): string => `Hello ${name}`;\n",
    "java": 'public class Main {\n  public static void main(String[] args) {\n    System.out.println("hi");\n  }\n}\n',
    "c": '#include <stdio.h>\nint main(void) {\n  printf("hi\\n");\n  return 0;\n}\n',
    "c++": '#include <iostream>\nint main() { std::cout << "hi" << std::endl; }\n',
    "go": 'package main\nimport "fmt"\nfunc main() {\n  fmt.Println("hi")\n}\n',
    "rust": 'fn main() {\n    let x: i32 = 5;\n    println!("{}", x);\n}\n',
    "sql": "SELECT name FROM users WHERE age > 30 ORDER BY name;",
    "sql lower case": "select name from users where age > 30 order by name;",
    "shell": "sudo apt-get install -y nginx && grep -r TODO . | wc -l",
}


def score(text: str) -> Score:
    return score_text(text)


# --------------------------------------------------------------------------- shape


def test_dimensions_are_distinct_and_cover_the_basics() -> None:
    for name in ("math", "code", "reasoning", "length", "entities", "constraints", "negation"):
        assert name in DIMENSIONS
    assert len(set(DIMENSIONS)) == len(DIMENSIONS)


def test_the_package_exports_the_scorer_the_score_and_the_dimensions() -> None:
    public = {name for name in vars(stratum_litellm.scoring) if not name.startswith("_")}
    assert {"Scorer", "Score", "DIMENSIONS"} <= public
    assert set(stratum_litellm.scoring.__all__) == {"Scorer", "Score", "DIMENSIONS"}
    assert stratum_litellm.scoring.Scorer is Scorer and stratum_litellm.scoring.DIMENSIONS == DIMENSIONS


def test_parts_explain_the_value() -> None:
    s = score(HARD_PROSE)
    assert tuple(s.parts) == DIMENSIONS and tuple(s.levels) == DIMENSIONS
    z = Scorer().bias + sum(s.parts.values()) + s.learned  # the learned part: the profile's words
    assert s.value == pytest.approx(1 / (1 + math.exp(-z)))
    for d in DIMENSIONS:
        assert 0.0 <= s.levels[d] <= 1.0
        assert s.parts[d] == pytest.approx(default_weights()[d] * s.levels[d])
    assert dict(s.levels) == levels(RequestView.from_prompt(HARD_PROSE))


def test_a_score_cannot_be_changed() -> None:
    s = score(HARD_PROSE)
    with pytest.raises(TypeError):
        s.parts["code"] = 9.0  # type: ignore[index]
    with pytest.raises(TypeError):
        s.levels["code"] = 1.0  # type: ignore[index]


def test_shipped_data_is_complete() -> None:
    raw = json.loads(resources.files("stratum_litellm.scoring").joinpath("data/weights.json").read_text())
    assert set(raw["weights"]) == set(DIMENSIONS)
    assert all(math.isfinite(w) and w >= 0 for w in raw["weights"].values())
    assert math.isfinite(raw["bias"])


def test_score_text_matches_scorer() -> None:
    assert score_text(HARD_QUESTION) == Scorer().score(RequestView.from_prompt(HARD_QUESTION))


# --------------------------------------------------------------------------- weights


def test_unknown_dimension_is_refused_with_the_list() -> None:
    with pytest.raises(ValueError) as e:
        Scorer({"maths": 1.0})
    assert "maths" in str(e.value)
    for d in DIMENSIONS:
        assert d in str(e.value)


def test_weight_overrides_apply() -> None:
    text = CODE["python"]
    off = Scorer({"code": 0.0}).score(RequestView.from_prompt(text))
    on = Scorer({"code": 10.0}).score(RequestView.from_prompt(text))
    assert off.parts["code"] == 0.0
    assert on.value > Scorer().score(RequestView.from_prompt(text)).value > off.value
    assert Scorer({"code": 2}).weights["code"] == 2.0 and Scorer().weights["math"] == default_weights()["math"]


# --------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("text", GREETINGS)
def test_greetings_stay_well_below_the_threshold(text: str) -> None:
    assert score(text).value < 0.2


def test_long_hard_prose_reaches_the_strong_tier() -> None:
    assert score(HARD_PROSE).value >= 0.65


@pytest.mark.parametrize("greeting", GREETINGS)
def test_appending_a_hard_question_raises_the_score(greeting: str) -> None:
    assert score(f"{greeting} {HARD_QUESTION}").value > score(greeting).value + 0.3


@pytest.mark.parametrize(
    "text",
    [
        "my_variable_name = other_variable_name",
        "please rename snake_case_identifier and another_long_name_here",
        '{"user_id": 12, "items": [1, 2, 3], "nested": {"a_b": null, "c": true}}',
        '{\n  "name": "x",\n  "list": [10, 20],\n  "flag": false\n}',
    ],
)
def test_snake_case_and_json_are_not_math(text: str) -> None:
    assert score(text).parts["math"] == 0.0


def test_math_notation_is_math() -> None:
    assert score("Solve 3x + 4 = 19 and then compute x^2 - 2x.").parts["math"] > 0
    assert score("Evaluate \\frac{1}{2} + \\sqrt{2} and ∑ of 1/n^2.").parts["math"] > 0


@pytest.mark.parametrize("language", sorted(CODE))
def test_code_in_common_languages_raises_the_code_part(language: str) -> None:
    assert score(CODE[language]).parts["code"] > score(PLAIN).parts["code"]
    assert score(CODE[language]).parts["code"] > 0.5


def test_sql_keywords_count_in_either_case() -> None:
    assert score(CODE["sql lower case"]).parts["code"] > 0
    # ... but prose that says "select ... from" is not SQL.
    assert score("Select the best answer from the list below.").parts["code"] == 0


def test_word_problems_with_relative_quantities_score_higher() -> None:
    plain = score("Andy plants 90 geraniums and 40 petunias. How many flowers does he plant?")
    relative = score("Andy plants 90 geraniums and 40 fewer petunias than geraniums. How many flowers does he plant?")
    assert relative.parts["arithmetic"] > plain.parts["arithmetic"]


def test_domains_compete() -> None:
    law = "The plaintiff sued the defendant for negligence; the court held the defendant liable for breach of contract and the jury agreed. A doctor testified."
    s = score(law)
    assert s.levels["law"] > 0.5 and s.levels["medicine"] < s.levels["law"] / 2


def test_cjk_length_is_counted_per_character() -> None:
    cjk = "这是一个关于机器学习的问题请解释梯度下降的原理" * 40  # 920 characters
    tokens = measure(cjk).tokens
    assert 0.8 * len(cjk) <= tokens <= 1.2 * len(cjk)
    english = "word " * 184  # same number of characters, ~230 tokens
    assert measure(english).tokens < tokens / 2
    assert score(cjk).levels["length"] > score(english).levels["length"]


@pytest.mark.parametrize(
    "text",
    [
        "😀🎉👍🏽 emoji only 👨‍👩‍👧‍👦",
        "مرحبا كيف حالك؟ هذا نص عربي من اليمين إلى اليسار",
        "שלום עולם \u202e reversed \u202c",
        "control \x00\x01\x07\x1b[31m chars \r\n\t\x7f",
        "\ud800 lone surrogate \udfff",
        "Ǳ ﬁ ẞ ᾈ combining a\u0301\u0302",
    ],
)
def test_any_script_scores_without_crashing(text: str) -> None:
    s = score(text)
    assert 0.0 <= s.value <= 1.0 and math.isfinite(s.value)


def test_earlier_turns_weigh_less_than_the_last_one() -> None:
    sc = Scorer()
    last = sc.score(RequestView.from_messages([{"role": "user", "content": "ok"}, {"role": "assistant", "content": "sure"}, {"role": "user", "content": HARD_QUESTION}]))
    earlier = sc.score(RequestView.from_messages([{"role": "user", "content": HARD_QUESTION}, {"role": "assistant", "content": "sure"}, {"role": "user", "content": "ok"}]))
    alone = sc.score(RequestView.from_messages([{"role": "user", "content": "ok"}]))
    assert last.value > earlier.value > alone.value


def test_system_prompt_is_read() -> None:
    sc = Scorer()
    with_system = sc.score(RequestView.from_request({"messages": [{"role": "system", "content": CODE["c"] + HARD_QUESTION}, {"role": "user", "content": "go"}]}))
    without = sc.score(RequestView.from_request({"messages": [{"role": "user", "content": "go"}]}))
    assert with_system.value > without.value
    assert with_system.parts["code"] > 0


def test_images_are_counted_and_tools_are_read() -> None:
    sc = Scorer()
    plain = sc.score(RequestView.from_request({"messages": [{"role": "user", "content": "what is this?"}]}))
    image = RequestView.from_request(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "image_url", "image_url": {"url": "y"}}]}]}
    )
    assert image.images == 2 and image.last_user == "what is this?"
    assert sc.score(image).parts["context"] > plain.parts["context"] == 0.0
    tool_view = RequestView.from_request(
        {
            "messages": [
                {"role": "user", "content": "fix it"},
                {"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "run_shell", "arguments": '{"cmd": "sudo chmod 755 deploy.sh && grep -r TODO src/"}'}}]},
                {"role": "tool", "content": "Traceback (most recent call last): KeyError: 'user_id'"},
                {"role": "user", "content": "fix it"},
            ]
        }
    )
    assert "run_shell" in tool_view.tools and "grep" in tool_view.tools
    tooled = sc.score(tool_view)
    assert tooled.parts["context"] > 0 and tooled.parts["code"] > 0
    assert tooled.value > plain.value


def test_huge_input_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    scanned: list[int] = []
    real = scoring.measure

    def counting(text: str):  # type: ignore[no-untyped-def]
        scanned.append(len(text))
        return real(text)

    monkeypatch.setattr(scoring, "measure", counting)
    scoring._CACHE.clear()
    megabyte = ("Explain the proof step by step. " + CODE["python"] + " 3 + 4 = 7. ") * 13_000
    assert len(megabyte) > 1_000_000
    body = {"messages": [{"role": "system", "content": megabyte}, {"role": "user", "content": megabyte}, {"role": "assistant", "content": megabyte}, {"role": "user", "content": megabyte}]}
    view = RequestView.from_request(body)
    s = Scorer().score(view)
    assert view.scanned_chars <= MAX_SCANNED_CHARS
    assert 0 < sum(scanned) <= MAX_SCANNED_CHARS
    assert s.value > 0.5  # the length estimate still sees the whole last turn
    assert s.levels["length"] == 1.0


# --------------------------------------------------------------------------- properties


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(max_size=3000))
def test_score_is_a_finite_probability_for_any_text(text: str) -> None:
    s = score(text)
    assert 0.0 <= s.value <= 1.0 and math.isfinite(s.value)
    assert tuple(s.parts) == DIMENSIONS
    assert all(math.isfinite(v) and v >= 0 for v in s.parts.values())


junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=50)),
    lambda c: st.one_of(st.lists(c, max_size=4), st.dictionaries(st.sampled_from(["role", "content", "type", "text", "tool_calls"]), c, max_size=4)),
    max_leaves=25,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(messages=st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "tool"]), "content": junk}), max_size=6), tools=junk)
def test_score_never_raises_for_any_request(messages: Any, tools: Any) -> None:
    s = Scorer().score(RequestView.from_request({"messages": messages, "tools": tools}))
    assert 0.0 <= s.value <= 1.0


@settings(max_examples=100)
@given(
    last_user=st.one_of(st.text(), st.none(), st.integers()),
    turns=st.one_of(st.integers(), st.text(), st.none()),
    images=st.one_of(st.integers(), st.floats()),
    chars=st.one_of(st.integers(), st.none()),
)
def test_score_never_raises_for_a_malformed_view(last_user: Any, turns: Any, images: Any, chars: Any) -> None:
    view = RequestView(last_user=last_user, turns=turns, images=images, total_chars=chars, last_user_chars=chars)  # type: ignore[arg-type]
    s = Scorer().score(view)
    assert 0.0 <= s.value <= 1.0 and tuple(s.parts) == DIMENSIONS


@settings(max_examples=200)
@given(prefix=st.text(alphabet=st.characters(categories=["L", "Zs"]), max_size=60))
def test_appending_hard_prose_never_lowers_the_score(prefix: str) -> None:
    assert score(prefix + " " + HARD_PROSE).value >= score(prefix).value


@settings(max_examples=100)
@given(text=st.text(max_size=500))
def test_levels_are_in_unit_interval_for_every_dimension(text: str) -> None:
    found = levels(RequestView.from_prompt(text))
    assert tuple(found) == DIMENSIONS
    for v in found.values():
        assert 0.0 <= v <= 1.0
