"""Scoring profiles: the two shipped ones, an operator's own file (refused whole, with the file
and what was expected, when it is not one), relative paths read from the settings file's
folder, and the invariant the learning loop rests on: a profile scores a request's stored
features exactly as it scores the request itself."""

from __future__ import annotations

import json
import math
import random
import zlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stratum_litellm.config import load_settings
from stratum_litellm.learning.example import Example
from stratum_litellm.routing.policy import Policy
from stratum_litellm.scoring import text as text_features
from stratum_litellm.scoring.dimensions import DIMENSIONS
from stratum_litellm.scoring.profile import (
    FORMAT,
    MAX_BITS,
    MIN_BITS,
    Profile,
    ProfileError,
    TextPart,
    builtin,
    load_profile,
    parse,
    resolve,
    settings_folder,
)
from stratum_litellm.scoring.scorer import Scorer
from stratum_litellm.scoring.view import RequestView

HARD = ("Prove rigorously that every prime greater than 3 squared minus one is divisible by 24, then compare "
        "it with a proof by modular arithmetic and explain step by step why it fails for composites.")
GREETING = "hi there! thanks"


def document(**changes: Any) -> dict[str, Any]:
    """A whole, valid profile document (the hand-made weights, a small learned part), changed."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "name": "mine",
        "bias": -2.0,
        "weights": {d: 1.0 for d in DIMENSIONS},
        "text": {"features": text_features.FEATURES, "bits": 12, "indices": [1, 7, 4095], "weights": [0.5, -0.25, 2.0]},
        "fitted": {"labels": 120, "at": "2026-01-01T00:00:00Z"},
    }
    doc.update(changes)
    return doc


def write(path: Path, content: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def refusal(tmp_path: Path, content: Any) -> str:
    """The message of the ProfileError a file with ``content`` raises; it must name the file."""
    path = write(tmp_path / "profiles" / "bad.json", content)
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert str(path) in message
    return message


def word_weight(word: str, bits: int) -> int:
    """The table index of a single word's feature."""
    return zlib.crc32(word.encode("utf-8")) & ((1 << bits) - 1)


# --------------------------------------------------------------------------- the shipped ones


def test_the_default_profile_ships_with_a_learned_part_and_the_handmade_one_without() -> None:
    default, handmade = builtin("default"), builtin("handmade")
    assert default.name == "default" and default.source == "builtin:default"
    assert handmade.name == "handmade" and handmade.source == "builtin:handmade"
    assert default.text is not None and len(default.text.indices) > 0
    assert MIN_BITS <= default.text.bits <= MAX_BITS
    assert handmade.text is None
    assert set(default.weights) == set(handmade.weights) == set(DIMENSIONS)
    assert default.labels > 0 and default.fitted_at is not None  # it says what it was fitted on
    assert handmade.labels == 0


def test_no_profile_named_means_the_default_and_builtin_names_load_the_shipped_files() -> None:
    assert resolve(None) == "builtin:default"
    assert resolve("handmade") == "builtin:handmade"
    assert load_profile(None).source == "builtin:default"
    assert load_profile("default").to_json() == builtin("default").to_json()
    assert load_profile("handmade").text is None
    # The scorer without a profile scores with the default one.
    view = RequestView.from_prompt(HARD)
    assert Scorer().score(view) == Scorer(profile=builtin("default")).score(view)


def test_the_learned_part_changes_scores_and_the_handmade_profile_has_none() -> None:
    handmade = Scorer(profile=builtin("handmade")).score(RequestView.from_prompt(HARD))
    default = Scorer(profile=builtin("default")).score(RequestView.from_prompt(HARD))
    assert handmade.learned == 0.0
    assert default.learned != 0.0


def test_a_handmade_file_of_the_operator_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "mine.json", document(text=None))
    profile = load_profile(str(path))
    assert profile.name == "mine" and profile.source == str(path)
    assert profile.text is None and profile.bias == -2.0 and profile.labels == 120
    assert dict(profile.weights) == {d: 1.0 for d in DIMENSIONS}


def test_a_file_without_a_name_is_named_after_the_file(tmp_path: Path) -> None:
    doc = document()
    del doc["name"]
    assert load_profile(str(write(tmp_path / "night-shift.json", doc))).name == "night-shift"


# --------------------------------------------------------------------------- refusals


def test_a_missing_file_is_refused_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "mine.json"
    with pytest.raises(ProfileError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert str(path) in message and "cannot read" in message and "No such file" in message


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    assert "is not JSON" in refusal(tmp_path, '{"bias": -2, ')


@pytest.mark.parametrize("content, kind", [([1, 2], "list"), ("3", "int"), ('"text"', "str"), ("null", "NoneType")])
def test_a_file_that_is_not_an_object_is_refused(tmp_path: Path, content: Any, kind: str) -> None:
    message = refusal(tmp_path, content if isinstance(content, str) else json.dumps(content))
    assert "expected a JSON object" in message and kind in message


def test_a_missing_dimension_is_named(tmp_path: Path) -> None:
    weights = {d: 1.0 for d in DIMENSIONS if d != "math"}
    message = refusal(tmp_path, document(weights=weights))
    assert "missing math" in message
    for d in DIMENSIONS:  # what was expected: every dimension
        assert d in message


def test_an_unknown_dimension_is_named(tmp_path: Path) -> None:
    message = refusal(tmp_path, document(weights={**{d: 1.0 for d in DIMENSIONS}, "maths": 2.0}))
    assert "unknown maths" in message


def test_weights_that_are_not_an_object_are_refused(tmp_path: Path) -> None:
    assert "'weights' must be an object" in refusal(tmp_path, document(weights=[1.0] * len(DIMENSIONS)))


@pytest.mark.parametrize("raw", ["Infinity", "-Infinity", "NaN", '"1.5"', "true", "null"])
def test_a_weight_that_is_not_a_finite_number_is_refused(tmp_path: Path, raw: str) -> None:
    # Python's JSON reader accepts NaN and Infinity: the profile must not.
    text = json.dumps(document(weights={d: 1.0 for d in DIMENSIONS})).replace('"code": 1.0', f'"code": {raw}')
    message = refusal(tmp_path, text)
    assert "weights.code must be a finite number" in message


@pytest.mark.parametrize("raw", ["Infinity", "NaN", '"-2"', "null"])
def test_a_bias_that_is_not_a_finite_number_is_refused(tmp_path: Path, raw: str) -> None:
    text = json.dumps(document()).replace('"bias": -2.0', f'"bias": {raw}')
    assert "'bias' must be a finite number" in refusal(tmp_path, text)


def test_another_format_is_refused(tmp_path: Path) -> None:
    message = refusal(tmp_path, document(format="stratum-profile/2"))
    assert "stratum-profile/2" in message and FORMAT in message


@pytest.mark.parametrize("bits", [MIN_BITS - 1, MAX_BITS + 1, 0, -3, 12.0, "12", True, None])
def test_text_bits_out_of_range_are_refused(tmp_path: Path, bits: Any) -> None:
    text = {"features": text_features.FEATURES, "bits": bits, "indices": [], "weights": []}
    message = refusal(tmp_path, document(text=text))
    assert f"text.bits must be an integer from {MIN_BITS} to {MAX_BITS}" in message


@pytest.mark.parametrize("index", [4096, -1, 1.0, "3", None])
def test_text_indices_out_of_range_are_refused(tmp_path: Path, index: Any) -> None:
    text = {"features": text_features.FEATURES, "bits": 12, "indices": [5, index], "weights": [1.0, 1.0]}
    message = refusal(tmp_path, document(text=text))
    assert "text.indices[1] must be an integer from 0 to 4095" in message


def test_text_weights_must_be_finite_and_as_many_as_the_indices(tmp_path: Path) -> None:
    uneven = {"features": text_features.FEATURES, "bits": 12, "indices": [1, 2], "weights": [1.0]}
    assert "same length" in refusal(tmp_path, document(text=uneven))
    text = json.dumps(document(text={"features": text_features.FEATURES, "bits": 12, "indices": [1], "weights": [0.5]}))
    assert "text.weights[0] must be a finite number" in refusal(tmp_path, text.replace("[0.5]", "[Infinity]"))


@pytest.mark.parametrize("features", ["words-1/md5/v0", None, 3])
def test_text_features_of_another_kind_are_refused_with_the_way_out(tmp_path: Path, features: Any) -> None:
    text = {"features": features, "bits": 12, "indices": [], "weights": []}
    message = refusal(tmp_path, document(text=text))
    assert f"text.features {features!r}" in message
    assert text_features.FEATURES in message and "stratum fit" in message


def test_a_text_part_that_is_not_an_object_is_refused(tmp_path: Path) -> None:
    assert "'text' must be an object" in refusal(tmp_path, document(text=[1, 2]))


# --------------------------------------------------------------------------- where files are read


def test_a_relative_profile_path_is_read_from_the_settings_files_folder(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "gateway"
    write(folder / "profiles" / "mine.json", document(name="from-the-settings-folder"))
    config = write(folder / "litellm_config.yaml", "stratum:\n  complexity:\n    profile: profiles/mine.json\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory does not matter

    assert settings_folder(str(config)) == str(folder.resolve())
    assert resolve("profiles/mine.json", settings_folder(str(config))) == str(folder.resolve() / "profiles" / "mine.json")
    assert load_profile("profiles/mine.json", settings_folder(str(config))).name == "from-the-settings-folder"
    # What the router builds from that settings file.
    policy = Policy(load_settings(config), source=str(config))
    assert policy.scorer.profile.name == "from-the-settings-folder"


def test_settings_not_from_a_file_read_relative_paths_from_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "mine.json", document(name="from-the-working-directory"))
    monkeypatch.chdir(tmp_path)
    assert settings_folder("defaults") is None and settings_folder("") is None
    assert load_profile("mine.json", settings_folder("litellm.callback_settings")).name == "from-the-working-directory"


def test_an_absolute_path_ignores_the_settings_folder(tmp_path: Path) -> None:
    path = write(tmp_path / "abs" / "mine.json", document(name="absolute"))
    assert load_profile(str(path), str(tmp_path / "somewhere-else")).name == "absolute"


def test_a_home_relative_path_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path / "profiles" / "mine.json", document(name="home"))
    assert load_profile("~/profiles/mine.json", "/nonexistent").name == "home"


# --------------------------------------------------------------------------- stored features score exactly


def dense_profile(seed: int = 7) -> Profile:
    """A profile whose learned part weighs every word strongly (a table with no zero), so the
    text features carry much of each score."""
    rng = random.Random(seed)
    bits = 10
    return Profile("dense", -1.0, {d: rng.uniform(-2, 3) for d in DIMENSIONS},
                   TextPart.of(bits, range(1 << bits), [rng.uniform(-4, 4) for _ in range(1 << bits)]))


PROFILES = {"default": builtin("default"), "handmade": builtin("handmade"), "dense": dense_profile()}

prompts = st.one_of(
    st.text(max_size=2000),
    st.lists(st.sampled_from(["prove", "the", "theorem", "zorblax", "SELECT", "def", "über", "naïve", "猫", "가", "ж",
                              "🎉", "x^2", "3.14", "¿por", "qué?", "\n", "  ", "-", "_", "step", "by"]),
             max_size=300).map(" ".join),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prompt=prompts, which=st.sampled_from(sorted(PROFILES)))
def test_a_profile_scores_a_requests_stored_features_as_it_scores_the_request(prompt: str, which: str) -> None:
    profile = PROFILES[which]
    live = Scorer(profile=profile).score(RequestView.from_prompt(prompt)).value
    example = Example.of_prompt(prompt)
    assert abs(live - profile.value(example.levels, example.hashes)) <= 1e-9


@settings(max_examples=100, deadline=None)
@given(prompt=prompts)
def test_the_learned_part_of_a_text_is_that_of_its_feature_hashes(prompt: str) -> None:
    text = PROFILES["dense"].text
    assert text is not None
    assert text.contribution(prompt) == pytest.approx(text.contribution_of(text_features.hashes(prompt)), abs=1e-9)


def test_a_long_prompt_scores_from_its_stored_features_too() -> None:
    prompt = (HARD + " ") * 400  # beyond the view's caps and the learned part's token limit
    for profile in PROFILES.values():
        live = Scorer(profile=profile).score(RequestView.from_prompt(prompt)).value
        example = Example.of_prompt(prompt)
        assert abs(live - profile.value(example.levels, example.hashes)) <= 1e-9


# --------------------------------------------------------------------------- explaining the learned part


def test_top_names_the_weightiest_words_of_a_text() -> None:
    bits = 12
    table = {word_weight("zorblax", bits): 6.0, word_weight("hello", bits): -2.0, word_weight("world", bits): 0.5}
    part = TextPart.of(bits, sorted(table), [table[i] for i in sorted(table)])
    found = part.top("Hello ZORBLAX world, zorblax!")
    names = [name for name, _ in found]
    assert names[0] == "zorblax" and names[1] == "hello" and names[2] == "world"
    # Each word's share of the part: its weight, per occurrence, over the square root of the features.
    features = len(text_features.hashes("Hello ZORBLAX world, zorblax!"))
    assert dict(found)["zorblax"] == pytest.approx(2 * 6.0 / math.sqrt(features))
    assert dict(found)["hello"] == pytest.approx(-2.0 / math.sqrt(features))
    # Words the part does not weigh are left out, and n bounds the list.
    assert "a" not in names and len(part.top("Hello ZORBLAX world", n=1)) == 1
    assert part.top("") == []


def test_top_names_word_pairs_too() -> None:
    bits = 12
    pair = zlib.crc32(b" bar", zlib.crc32(b"foo")) & ((1 << bits) - 1)
    part = TextPart.of(bits, [pair], [3.0])
    assert part.top("foo bar baz")[0][0] == "foo bar"


def test_the_default_profiles_top_words_add_up_to_its_learned_part() -> None:
    profile = builtin("default")
    assert profile.text is not None
    prompt = "Explain step by step how to prove the theorem, then write the Python code for it."
    top = profile.text.top(prompt, n=10_000)
    assert sum(v for _, v in top) == pytest.approx(profile.text.contribution(prompt), abs=1e-6)


# --------------------------------------------------------------------------- writing one


def test_a_profile_round_trips_through_its_json() -> None:
    for profile in PROFILES.values():
        again = parse(json.loads(json.dumps(profile.to_json())), "again.json")
        assert again.name == profile.name and again.bias == pytest.approx(profile.bias, abs=1e-6)
        assert dict(again.weights) == pytest.approx(dict(profile.weights), abs=1e-6)
        assert dict(again.fitted) == dict(profile.fitted)
        if profile.text is None:
            assert again.text is None
        else:
            assert again.text is not None and again.text.bits == profile.text.bits
            assert again.text.indices == profile.text.indices
            assert again.text.weights == pytest.approx(profile.text.weights, abs=1e-6)
        assert again.to_json() == profile.to_json()
        for prompt in (HARD, GREETING, "zorblax über naïve 猫"):
            example = Example.of_prompt(prompt)
            assert again.value(example.levels, example.hashes) == pytest.approx(
                profile.value(example.levels, example.hashes), abs=1e-5)


finite = st.floats(min_value=-50, max_value=50, allow_nan=False)


@settings(max_examples=100, deadline=None)
@given(bias=finite, weights=st.lists(finite, min_size=len(DIMENSIONS), max_size=len(DIMENSIONS)),
       bits=st.integers(MIN_BITS, 14), data=st.data())
def test_any_profile_round_trips_through_its_json(bias: float, weights: list[float], bits: int, data: Any) -> None:
    indices = data.draw(st.lists(st.integers(0, (1 << bits) - 1), unique=True, max_size=30))
    values = data.draw(st.lists(finite, min_size=len(indices), max_size=len(indices)))
    profile = Profile("p", bias, dict(zip(DIMENSIONS, weights)), TextPart.of(bits, indices, values) if indices else None)
    written = profile.to_json()
    again = parse(json.loads(json.dumps(written)), "p.json")
    assert again.to_json() == written
    assert again.bias == pytest.approx(bias, abs=1e-6)
    assert (again.text is None) == (profile.text is None)
