"""`stratum calibrate`: a threshold for a target share above the first rung (the smart tier of
two), on any ladder whatever its tiers are called, written back safely."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stratum_litellm.cli.calibrate import calibrate, write_threshold
from stratum_litellm.routing.policy import Policy
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.config import SettingsError, StratumSettings, load_settings, parse_settings
from test_cli import ROOT, run

PROMPTS = [
    SIMPLE_PROMPT, "What is 2 + 2?", "Translate 'good morning' into French.", COMPLEX_PROMPT,
    "Write a Python function that merges two sorted lists in linear time and prove its complexity.",
    "Compare the causes of the First and Second World Wars, weighing economic against political factors, "
    "and explain which historians disagree and why.", "thanks!", "Summarise this: the cat sat on the mat.",
    "Derive the closed form of the sum of the first n squares and prove it by induction.", "hello",
]


@hsettings(max_examples=30, deadline=None)
@given(target=st.floats(0.0, 1.0))
def test_the_chosen_threshold_gives_about_the_target_share(target: float) -> None:
    views = [RequestView.from_prompt(p) for p in PROMPTS]
    result = calibrate(views, Policy(StratumSettings()), target)
    scores = sorted((Policy(StratumSettings()).scorer.score(v).value for v in views), reverse=True)
    # Exact up to one request (and ties, which move together).
    ties = max(scores.count(s) for s in scores)
    assert abs(result.share - target) <= (ties + 0.5) / len(views) + 1e-9
    assert result.share == sum(s >= result.threshold for s in scores) / len(views)
    shares = [share for _, share in result.table]
    assert shares == sorted(shares, reverse=True)  # a higher threshold never sends more


def test_rules_are_counted_whatever_the_threshold() -> None:
    policy = Policy(parse_settings({"rules": [{"name": "hello-smart", "keywords": ["hello"], "route": "smart"}]}))
    result = calibrate([RequestView.from_prompt(p) for p in PROMPTS], policy, 0.0)
    assert result.ruled_above == pytest.approx(0.1) and result.share == pytest.approx(0.1)


def test_write_keeps_comments_and_refuses_ambiguity(tmp_path: Path) -> None:
    cfg = tmp_path / "litellm_config.yaml"
    shutil.copy(ROOT / "litellm_config.yaml", cfg)
    write_threshold(cfg, 0.42)
    assert load_settings(cfg).complexity.threshold == 0.42
    assert "# LiteLLM gateway config" in cfg.read_text()
    two = tmp_path / "two.yaml"
    two.write_text("complexity:\n  threshold: 0.5\n# threshold: 0.6\nrules: []\n  threshold: 0.7\n")
    with pytest.raises(SettingsError, match="exactly one"):
        write_threshold(two, 0.3)


def test_the_command_prints_the_table_and_writes(tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    cfg = tmp_path / "litellm_config.yaml"
    shutil.copy(ROOT / "litellm_config.yaml", cfg)
    out = run("calibrate", str(data), "--target-share", "0.3", "--config", str(cfg), "--write")
    assert out.returncode == 0, out.stderr
    assert "<- suggested" in out.stdout and "30.0%" in out.stdout
    written = load_settings(cfg).complexity.threshold
    assert f"wrote complexity.threshold: {written}" in out.stdout
    out = run("score", "--jsonl", "--config", str(cfg), stdin=data.read_text())
    tiers = [json.loads(line)["tier"] for line in out.stdout.splitlines()]
    assert tiers.count("smart") == 3


# Three local rungs named as an operator might (the repository's examples/ladder.yaml style).
OTHER_NAMES = {
    "tiers": {
        "small": {"model_group": "m-small"},
        "medium": {"model_group": "m-medium", "entry_score": 0.5},
        "large": {"model_group": "m-large", "entry_score": 0.8},
    },
    "rules": [{"name": "hello-large", "keywords": ["hello"], "route": "large"},
              {"name": "thanks-small", "keywords": ["thanks"], "route": "small"}],
}


def test_a_ladder_with_other_names_counts_its_rules_by_rung() -> None:
    policy = Policy(parse_settings(OTHER_NAMES))
    views = [RequestView.from_prompt(p) for p in PROMPTS]
    result = calibrate(views, policy, 0.0)
    # "hello" goes to large (above the first rung), the two thanks to small: counted as they go.
    assert result.ruled_above == pytest.approx(0.1) and result.ruled_first == pytest.approx(0.2)
    assert result.share == pytest.approx(0.1) and (result.first, result.second) == ("small", "medium")
    assert calibrate(views, policy, 1.0).share == pytest.approx(0.8)  # all but the two a rule keeps small


def test_the_command_names_the_rungs_of_a_ladder_with_other_names(tmp_path: Path) -> None:
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"id": i, "prompt": p}) + "\n" for i, p in enumerate(PROMPTS)))
    cfg = tmp_path / "ladder.yaml"
    cfg.write_text(json.dumps({"stratum": OTHER_NAMES}))
    out = run("calibrate", str(data), "--target-share", "0.5", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "target share to above small 50.0%" in out.stdout
    assert "config rules route 10.0% to above small and 20.0% to small" in out.stdout
    out = run("calibrate", str(data), "--shares", "60/30/10", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()[3:6]] == ["small", "medium", "large"]
