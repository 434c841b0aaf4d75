"""`stratum check`, `explain` and `calibrate` on a ladder, run as the installed console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT

ROOT = Path(__file__).resolve().parents[3]
STRATUM = Path(sys.executable).with_name("stratum")
EXAMPLE = ROOT / "examples" / "ladder.yaml"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "STRATUM_FAST_API_BASE": "http://127.0.0.1:1/v1",
           "STRATUM_SMART_API_BASE": "http://127.0.0.1:2/v1", "STRATUM_OVERFLOW_API_BASE": "http://127.0.0.1:3/v1"}
    return subprocess.run([str(STRATUM), *args], input=stdin, capture_output=True, text=True, cwd=ROOT,
                          timeout=60, env=env)


def test_check_accepts_the_example_ladder_and_lists_its_rungs() -> None:
    out = run("check", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    assert "fast (gemma4-fast, from 0.0) < smart (gemma4-smart, from 0.65) < cloud-overflow" in out.stdout


def test_check_refuses_a_tier_whose_model_group_the_gateway_does_not_serve(tmp_path: Path) -> None:
    config = yaml.safe_load(EXAMPLE.read_text())
    config["model_list"] = [m for m in config["model_list"] if m["model_name"] != "cloud-overflow"]
    bad = tmp_path / "gateway.yaml"
    bad.write_text(yaml.safe_dump(config, sort_keys=False))
    out = run("check", str(bad))
    assert out.returncode == 2
    assert "callback_settings.stratum.tiers.cloud-overflow.model_group: 'cloud-overflow' is not a model_name" in out.stderr


def test_explain_shows_every_rung_and_the_checks_of_the_tier_wanted() -> None:
    out = run("explain", COMPLEX_PROMPT, "--config", str(EXAMPLE), "--json")
    assert out.returncode == 0, out.stderr
    shown = json.loads(out.stdout)
    assert [r["tier"] for r in shown["ladder"]] == ["fast", "smart", "cloud-overflow"]
    assert shown["ladder"][-1]["overflow"] is True
    assert shown["decision"]["tier"] == "smart" and "latency_sla" in shown["decision"]["evidence"]["checks"]
    text = run("explain", SIMPLE_PROMPT, "--config", str(EXAMPLE)).stdout
    assert "ladder: fast (from 0.0) < smart (from 0.65) < cloud-overflow (overflow)" in text


def test_calibrate_sets_entry_scores_for_target_shares_per_tier(tmp_path: Path) -> None:
    settings = tmp_path / "ladder.yaml"
    settings.write_text(yaml.safe_dump({"stratum": {"gpu": {"enabled": False}, "tiers": {
        "small": {"model_group": "a"}, "mid": {"model_group": "b", "entry_score": 0.5},
        "large": {"model_group": "c", "entry_score": 0.8}}}}, sort_keys=False))
    prompts = [SIMPLE_PROMPT + f" {i}" for i in range(16)] + [COMPLEX_PROMPT + f" {i}" * i for i in range(4)]
    stdin = "\n".join(json.dumps({"prompt": p}) for p in prompts) + "\n"
    out = run("calibrate", "-", "--config", str(settings), "--shares", "80/15/5", stdin=stdin)
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines() if line.startswith(("small", "mid", "large"))}
    assert rows["small"][2] == "80.0%"
    entries = [float(rows[t][1]) for t in ("small", "mid", "large")]
    assert entries[0] == 0.0 and entries[0] < entries[1] < entries[2] <= 1.0
    assert sum(float(rows[t][2].rstrip("%")) for t in rows) == 100.0
    bad = run("calibrate", "-", "--config", str(settings), "--shares", "80/20", stdin=stdin)
    assert bad.returncode == 1 and "one share per local tier (small, mid, large)" in bad.stderr
