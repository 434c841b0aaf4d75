"""The `stratum` command, run as users run it: the installed console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

import nvml_fake  # tests/support
from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT

ROOT = Path(__file__).resolve().parents[3]
STRATUM = Path(sys.executable).with_name("stratum")


def run(*args: str, stdin: str | None = None, cwd: Path = ROOT, env: dict[str, str] | None = None):
    return subprocess.run([str(STRATUM), *args], input=stdin, capture_output=True, text=True, cwd=cwd,
                          timeout=60, env=env)


def test_score_prints_score_tier_and_reason() -> None:
    out = run("score", SIMPLE_PROMPT)
    assert out.returncode == 0, out.stderr
    score, tier, reason = out.stdout.split()
    assert 0.0 <= float(score) < 0.65 and (tier, reason) == ("fast", "simple")
    score, tier, reason = run("score", COMPLEX_PROMPT).stdout.split()
    assert float(score) >= 0.65 and (tier, reason) == ("smart", "complex")


def test_score_jsonl_keeps_order_reads_messages_and_reports_bad_lines() -> None:
    lines = [
        {"id": "a", "prompt": COMPLEX_PROMPT},
        {"id": "b", "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": SIMPLE_PROMPT}]},
        "not json",
        {"id": "d", "prompt": 42},
        {"id": "e", "prompt": "你好"},
    ]
    stdin = "\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n"
    out = run("score", "--jsonl", stdin=stdin)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["id"] for r in rows] == ["a", "b", None, "d", "e"]
    assert rows[0]["tier"] == "smart" and rows[1]["tier"] == "fast"
    assert set(rows[0]) >= {"id", "score", "tier", "reason"}
    assert "error" in rows[2] and "error" in rows[3] and "line 4" in rows[3]["error"]
    assert out.returncode == 1  # some lines were bad


def test_score_jsonl_uses_the_configs_threshold(tmp_path: Path) -> None:
    cfg = tmp_path / "low.yaml"
    cfg.write_text("complexity: {threshold: 0.0}\n")
    out = run("score", "--jsonl", "--config", str(cfg), stdin=json.dumps({"id": 1, "prompt": SIMPLE_PROMPT}) + "\n")
    assert json.loads(out.stdout)["tier"] == "smart"


def with_gpus(state: Path, *gpus: nvml_fake.FakeGpu) -> dict[str, str]:
    """This environment with the fake NVML library in front of any real one: the command
    reads these GPUs (none: NVML reports no GPU), whatever the machine has."""
    _, env = nvml_fake.for_a_process(state, gpus)
    return {**os.environ, **env}


def test_explain_shows_dimensions_decision_and_signals(tmp_path: Path) -> None:
    no_gpu = with_gpus(tmp_path / "no-gpu.state")
    out = run("explain", COMPLEX_PROMPT, env=no_gpu)
    assert out.returncode == 0, out.stderr
    from stratum_litellm.scoring.scorer import DIMENSIONS

    for name in DIMENSIONS:
        assert name in out.stdout
    assert "decision: smart (gemma4-smart) because complex" in out.stdout
    # No GPU: the GPU rules abstain, visibly.
    assert "check vram" in out.stdout and "abstain: GPU unknown" in out.stdout
    data = json.loads(run("explain", "--json", SIMPLE_PROMPT, env=no_gpu).stdout)
    assert data["decision"]["tier"] == "fast" and set(data["parts"]) == set(DIMENSIONS)
    # A GPU with room: the same checks pass (what explain shows is the GPU it was given).
    out = run("explain", COMPLEX_PROMPT, env=with_gpus(tmp_path / "one-gpu.state", nvml_fake.HALF_FREE))
    assert out.returncode == 0, out.stderr
    assert "gpu: ok" in out.stdout and re.search(r"check vram +pass", out.stdout), out.stdout


def test_check_accepts_the_repository_config_and_refuses_a_bad_one(tmp_path: Path) -> None:
    out = run("check", str(ROOT / "litellm_config.yaml"))
    assert out.returncode == 0 and out.stdout.startswith("ok:")
    document = yaml.safe_load((ROOT / "litellm_config.yaml").read_text())
    document["callback_settings"]["stratum"]["gpu"]["min_free_gb"] = 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(document))
    out = run("check", str(bad))
    assert out.returncode == 2
    assert str(bad) in out.stderr and "callback_settings.stratum.gpu.min_free_gb: unknown key" in out.stderr
    out = run("check", str(tmp_path / "missing.yaml"))
    assert out.returncode == 2 and "cannot read" in out.stderr
