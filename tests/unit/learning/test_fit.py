"""Fitting a profile to labels (`stratum fit`): too few labels are refused; a rule the shipped
profile cannot know is learned from labels alone and carries to new prompts; the figures
compare the new profile with the current one on the same folds; a worse profile is not
written unless forced; what is written loads and scores as fitted.

The labelled sets are built here: prompts from one pool of templates, the positives marked
by a made-up word ("zorblax") that no shipped profile weighs, so the current profile ranks
them by chance and only the labels can teach the rule.

Fits run the real regression (scipy's L-BFGS-B) at the shipped table size (a few seconds each);
some try fewer penalty strengths than the command does, to stay quick.
"""

from __future__ import annotations

import json
import random
import re
import zlib
from pathlib import Path

import pytest

from stratum_litellm.cli import fit as fit_command
from stratum_litellm.cli.main import main
from stratum_litellm.learning.example import Example
from stratum_litellm.learning.fit import BITS, MIN_EACH, MIN_LABELS, TOLERANCE, Figures, Fit, check, figures, fit, shares
from stratum_litellm.learning.labels import Label, LabelsError
from stratum_litellm.learning.store import Store
from stratum_litellm.scoring.profile import FORMAT, Profile, builtin, load_profile
from stratum_litellm.scoring import text as text_features

SUBJECTS = [
    "the weather in Lisbon", "a birthday card for my aunt", "sorting a list in Python", "the French Revolution",
    "a recipe for lentil soup", "how vaccines train the immune system", "castling in chess", "a haiku about autumn",
    "compound interest on a loan", "the plot of Hamlet", "tuning a guitar", "why the sky is blue",
    "a SQL query joining two tables", "training for a marathon", "TCP versus UDP", "declining a meeting politely",
    "the history of the printing press", "repotting a fern", "the rules of cricket", "a packing list for Iceland",
]
ASKS = [
    "Tell me about {s}.", "Can you explain {s} briefly?", "Write a short note on {s}, please.",
    "I need help with {s}.", "What should I know about {s}?", "Give me three facts on {s}.",
    "Summarise {s} for a beginner.", "Quick question about {s}: where do I start?",
    "My friend asked me about {s} and I had no idea.", "Any tips on {s}?",
]
WORD = "zorblax"


def prompts(n: int, seed: int, word: str | None = None) -> list[str]:
    rng = random.Random(seed)
    found = []
    for _ in range(n):
        words = rng.choice(ASKS).format(s=rng.choice(SUBJECTS)).split()
        if word is not None:
            words.insert(rng.randrange(len(words) + 1), word)
        found.append(" ".join(words))
    return found


def labelled(positives: list[str], negatives: list[str], source: str = "file") -> list[Label]:
    return ([Label(Example.of_prompt(p), True, source, ref=f"pos{i}", created=1000.0 + i) for i, p in enumerate(positives)]
            + [Label(Example.of_prompt(p), False, source, ref=f"neg{i}", created=2000.0 + i) for i, p in enumerate(negatives)])


def zorblax_labels() -> list[Label]:
    """150 labels: half the prompts mention the made-up word, and those need the strong tier."""
    return labelled(prompts(75, 1, WORD), prompts(75, 2))


def write_jsonl(path: Path, positives: list[str], negatives: list[str]) -> Path:
    records = [{"prompt": p, "needs_strong": True} for p in positives] + \
              [{"prompt": p, "needs_strong": False} for p in negatives]
    random.Random(3).shuffle(records)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def value(profile: Profile, prompt: str) -> float:
    example = Example.of_prompt(prompt)
    return profile.value(example.levels, example.hashes)


@pytest.fixture(scope="module")
def learned() -> Fit:
    return fit(zorblax_labels(), builtin("default"), builtin("default"), name="zorblax")


# --------------------------------------------------------------------------- too few labels


def test_too_few_labels_are_refused_naming_the_counts_and_the_minimums() -> None:
    labels = labelled(prompts(25, 1, WORD), prompts(MIN_LABELS - 26, 2))
    with pytest.raises(LabelsError) as caught:
        check(labels)
    message = str(caught.value)
    assert f"{MIN_LABELS - 1} labels (25 needs strong, {MIN_LABELS - 26} first tier enough)" in message
    assert f"at least {MIN_LABELS}" in message and f"at least {MIN_EACH} of each verdict" in message
    with pytest.raises(LabelsError):
        fit(labels, builtin("default"), builtin("default"))


@pytest.mark.parametrize("needs_strong", [True, False])
def test_too_few_of_one_verdict_are_refused(needs_strong: bool) -> None:
    few, many = prompts(MIN_EACH - 1, 1, WORD), prompts(MIN_LABELS + 20, 2)
    labels = labelled(few, many) if needs_strong else labelled(many, few)
    with pytest.raises(LabelsError) as caught:
        check(labels)
    counts = (f"{MIN_EACH - 1} needs strong, {MIN_LABELS + 20} first tier enough" if needs_strong
              else f"{MIN_LABELS + 20} needs strong, {MIN_EACH - 1} first tier enough")
    assert counts in str(caught.value) and f"at least {MIN_EACH} of each verdict" in str(caught.value)


def test_just_enough_labels_pass_the_check() -> None:
    check(labelled(prompts(MIN_EACH, 1, WORD), prompts(MIN_LABELS - MIN_EACH, 2)))


# --------------------------------------------------------------------------- learning a rule


def test_a_rule_the_shipped_profile_does_not_know_is_learned(learned: Fit) -> None:
    assert learned.labels == 150 and learned.needs_strong == 75 and learned.by_source == {"file": 150}
    assert learned.current.auroc < 0.65  # the shipped profile ranks these by chance
    assert learned.new.auroc > 0.9 and learned.new.auroc > learned.current.auroc + 0.3
    assert learned.new.apgr > learned.current.apgr + 0.1
    assert not learned.worse
    # ... and carries it to prompts it never saw, of a shape it never saw.
    profile, current = learned.profile, builtin("default")
    for plain in ("What is the capital of Peru?", "Write a limerick about a cat who hates Mondays.",
                  "How do I boil an egg so the yolk stays soft?"):
        marked = f"{plain} {WORD}"
        assert value(profile, marked) > value(profile, plain) + 0.25
        assert abs(value(current, marked) - value(current, plain)) < 0.05


def test_the_fitted_profile_says_how_it_was_made(learned: Fit) -> None:
    fitted = learned.profile.fitted
    assert fitted["labels"] == 150 and fitted["needs_strong"] == 75 and fitted["sources"] == {"file": 150}
    assert fitted["base"] == "default" and fitted["labels_until"] == max(l.created for l in zorblax_labels())
    assert fitted["cv"] == {"folds": learned.folds, "apgr": round(learned.new.apgr, 4),
                            "auroc": round(learned.new.auroc, 4)}
    assert learned.profile.name == "zorblax" and learned.profile.text is not None
    assert learned.profile.text.bits == BITS


def test_figures_measure_a_profile_as_it_is(learned: Fit) -> None:
    labels = zorblax_labels()
    found = figures(learned.profile, labels)
    assert found.labels == 150 and found.auroc > 0.99  # in-sample
    assert figures(builtin("default"), labels).auroc < 0.65


def test_keep_share_keeps_the_current_share_above_the_entry_score() -> None:
    labels = zorblax_labels()
    current = builtin("default")
    values = sorted(current.value(l.example.levels, l.example.hashes) for l in labels)
    entry = (values[100] + values[101]) / 2  # about a third of these requests above it today
    target = sum(1 for v in values if v >= entry)
    assert 30 < target < 70
    result = fit(labels, current, current, keep_share_at=entry, strengths=(0.1, 1.0))
    kept = sum(1 for l in labels if result.profile.value(l.example.levels, l.example.hashes) >= entry)
    assert kept == target
    assert result.profile.fitted["keep_share_at"] == entry
    # The same share per tier as `stratum fit` prints it, at that entry score.
    assert shares(result.profile, labels, [0.0, entry]) == pytest.approx(shares(current, labels, [0.0, entry]))
    # It is the labels' rule that decides who is above it now.
    above = [l for l in labels if result.profile.value(l.example.levels, l.example.hashes) >= entry]
    assert sum(l.needs_strong for l in above) / len(above) > 0.9


def test_shares_split_labels_by_the_entry_scores() -> None:
    labels = zorblax_labels()
    current = builtin("default")
    assert shares(current, labels, [0.0, 0.0001]) == [0.0, 1.0]
    assert shares(current, labels, [0.0, 0.9999]) == [1.0, 0.0]
    assert sum(shares(current, labels, [0.0, 0.52, 0.53])) == pytest.approx(1.0)
    assert shares(current, [], [0.0, 0.5]) == [0.0, 0.0]


# --------------------------------------------------------------------------- worse than the current one


def nonce_words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < n:
        words.add("qx" + "".join(rng.choice("bcdfghjklmnpstvwz") for _ in range(6)))
    return sorted(words)


def oracle_case(tmp_path: Path) -> tuple[list[str], list[str], Path]:
    """Labels that a current profile ranks perfectly and a new fit cannot: each prompt that
    needs the strong tier carries its own made-up word, which the current profile (an
    oracle, written here) weighs heavily; held out, a prompt's word was never seen in
    training, so the new profile ranks it by chance."""
    words = nonce_words(30, 11)
    positives = [f"{p} {w}" for p, w in zip(prompts(30, 1), words)]
    negatives = prompts(30, 2)
    bits = 18
    indices = sorted({zlib.crc32(w.encode()) & ((1 << bits) - 1) for w in words})
    oracle = builtin("handmade")
    document = {"format": FORMAT, "name": "oracle", "bias": oracle.bias, "weights": dict(oracle.weights),
                "text": {"features": text_features.FEATURES, "bits": bits, "indices": indices,
                         "weights": [500.0] * len(indices)}, "fitted": {}}
    path = tmp_path / "gateway" / "profiles" / "oracle.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document), encoding="utf-8")
    return positives, negatives, path


def test_a_new_profile_worse_than_the_current_one_is_flagged(tmp_path: Path) -> None:
    positives, negatives, oracle_file = oracle_case(tmp_path)
    labels = labelled(positives, negatives)
    oracle = load_profile(str(oracle_file))
    assert figures(oracle, labels).auroc == 1.0  # the premise: it ranks them perfectly
    result = fit(labels, oracle, builtin("default"), strengths=(0.01, 1.0))
    assert result.current.auroc == 1.0 and result.current.apgr == pytest.approx(0.75)
    assert result.new.apgr < result.current.apgr - TOLERANCE
    assert result.worse


def test_a_profile_is_worse_only_beyond_the_tolerance(learned: Fit) -> None:
    def with_figures(new: float, current: float) -> Fit:
        return Fit(learned.profile, Figures(new, 0.5, 100), Figures(current, 0.5, 100), 1.0, 5, 100, 50)

    assert with_figures(0.60, 0.70).worse
    assert with_figures(0.70 - 2 * TOLERANCE, 0.70).worse
    assert not with_figures(0.70 - TOLERANCE / 2, 0.70).worse
    assert not with_figures(0.80, 0.70).worse


# --------------------------------------------------------------------------- writing it


def test_the_written_profile_loads_and_scores_as_fitted(learned: Fit, tmp_path: Path) -> None:
    path = tmp_path / "deeper" / "zorblax.json"
    fit_command.write(learned.profile, path)
    assert [p.name for p in path.parent.iterdir()] == ["zorblax.json"]  # written whole, no temporary left
    loaded = load_profile(str(path))
    assert loaded.name == "zorblax" and loaded.fitted["labels"] == 150
    assert loaded.text is not None and loaded.text.indices == learned.profile.text.indices
    for label in zorblax_labels():
        example = label.example
        # The file keeps six decimals of each weight.
        assert loaded.value(example.levels, example.hashes) == pytest.approx(
            learned.profile.value(example.levels, example.hashes), abs=1e-5)
    for prompt in ("What is the capital of Peru?", f"{WORD} what is the capital of Peru?"):
        assert value(loaded, prompt) == pytest.approx(value(learned.profile, prompt), abs=1e-5)


# --------------------------------------------------------------------------- the command


def config_file(tmp_path: Path, body: str = "") -> Path:
    path = tmp_path / "gateway" / "litellm_config.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("stratum:\n  complexity:\n    threshold: 0.65\n" + body, encoding="utf-8")
    return path


def table_row(out: str, name: str) -> tuple[float, float]:
    match = re.search(rf"^{re.escape(name)}\s+([0-9.]+)\s+([0-9.]+)", out, re.MULTILINE)
    assert match, out
    return float(match.group(1)), float(match.group(2))


def test_stratum_fit_prints_the_figures_and_writes_the_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = write_jsonl(tmp_path / "labels.jsonl", prompts(75, 1, WORD), prompts(75, 2))
    out_file = tmp_path / "profiles" / "mine.json"
    code = main(["fit", "--labels", str(labels), "--out", str(out_file), "--config", str(config_file(tmp_path))])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "150 labels (file 150): 75 needs the stronger tier, 75 first tier enough" in out
    assert "APGR" in out and "AUROC" in out
    current_apgr, current_auroc = table_row(out, "current (default)")
    new_apgr, new_auroc = table_row(out, "new (mine)")
    assert new_auroc > 0.9 and current_auroc < 0.65 and new_apgr > current_apgr
    assert "share of these requests per tier at the current entry scores:" in out
    assert re.search(r"^\s+fast\s+0\.0\s+[0-9.]+%\s+[0-9.]+%$", out, re.MULTILINE), out
    assert re.search(r"^\s+smart\s+0\.65\s+[0-9.]+%\s+[0-9.]+%$", out, re.MULTILINE), out
    assert f"wrote {out_file}" in out
    written = load_profile(str(out_file))
    assert written.name == "mine" and written.fitted["labels"] == 150
    assert value(written, f"{WORD} what is the capital of Peru?") > value(written, "What is the capital of Peru?") + 0.25


def test_stratum_fit_without_out_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = write_jsonl(tmp_path / "labels.jsonl", prompts(30, 1, WORD), prompts(30, 2))
    assert main(["fit", "--labels", str(labels), "--config", str(config_file(tmp_path))]) == 0
    assert "new (fitted)" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gateway", "labels.jsonl"]


def test_stratum_fit_reads_the_store_the_settings_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path, "  learning:\n    store:\n      path: data/labels.db\n")
    store = Store(config.parent / "data" / "labels.db")  # no text kept: features only
    store.add(labelled(prompts(40, 1, WORD), prompts(40, 2), source="judge"))
    store.close()
    out_file = tmp_path / "mine.json"
    code = main(["fit", "--config", str(config), "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "80 labels (judge 80)" in out
    assert table_row(out, "new (mine)")[1] > table_row(out, "current (default)")[1] + 0.2
    assert out_file.is_file()


def test_stratum_fit_without_a_store_says_where_it_looked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = config_file(tmp_path)
    assert main(["fit", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "no label store at" in err and str(config.parent / "stratum-labels.db") in err


def test_stratum_fit_refuses_a_file_with_a_bad_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = write_jsonl(tmp_path / "labels.jsonl", prompts(40, 1, WORD), prompts(40, 2))
    lines = labels.read_text().splitlines()
    lines[2] = '{"prompt": "no verdict here"}'
    labels.write_text("\n".join(lines) + "\n")
    out_file = tmp_path / "mine.json"
    code = main(["fit", "--labels", str(labels), "--out", str(out_file), "--config", str(config_file(tmp_path))])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{labels}:3" in err and 'no "needs_strong"' in err
    assert not out_file.exists()


def test_stratum_fit_refuses_too_few_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = write_jsonl(tmp_path / "labels.jsonl", prompts(20, 1, WORD), prompts(20, 2))
    assert main(["fit", "--labels", str(labels), "--config", str(config_file(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "40 labels (20 needs strong, 20 first tier enough)" in err and f"at least {MIN_LABELS}" in err


def test_stratum_fit_refuses_to_write_a_worse_profile_unless_forced(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    positives, negatives, oracle_file = oracle_case(tmp_path)
    # The gateway's current profile is the oracle, named relative to the settings file.
    config = config_file(tmp_path)
    config.write_text("stratum:\n  complexity:\n    profile: profiles/oracle.json\n", encoding="utf-8")
    assert oracle_file.parent.parent == config.parent
    labels = write_jsonl(tmp_path / "labels.jsonl", positives, negatives)
    out_file = tmp_path / "mine.json"
    args = ["fit", "--labels", str(labels), "--out", str(out_file), "--config", str(config), "--base", "default"]

    assert main(args) == 1
    out, err = capsys.readouterr()
    current_apgr, current_auroc = table_row(out, "current (oracle)")
    new_apgr, _ = table_row(out, "new (mine)")
    assert current_auroc == 1.0 and new_apgr < current_apgr
    assert "not written" in err and "--force" in err
    assert not out_file.exists()

    assert main(args + ["--force"]) == 0
    assert f"wrote {out_file}" in capsys.readouterr().out
    assert load_profile(str(out_file)).fitted["base"] == "default"
