"""The capacity checks as a table: their order, their reasons, and the README that lists them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stratum_litellm.routing.checks import CHECKS
from stratum_litellm.routing.decision import Decision, Reason
from stratum_litellm.routing.verdict import PASS, abstain, block, probe

README = Path(__file__).resolve().parents[3] / "README.md"


def readme_checks() -> list[tuple[str, list[str]]]:
    """(check, reasons) per row of the README's table of capacity checks."""
    text = README.read_text(encoding="utf-8")
    table = text.split("| check | blocks when | reason |", 1)[1].split("\n\n", 1)[0]
    rows = []
    for line in table.strip().splitlines()[1:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0].strip("`"), re.findall(r"`([^`]+)`", cells[-1])))
    return rows


def test_the_readme_lists_the_checks_in_the_order_they_run_with_their_reasons() -> None:
    built_in = [(check.name, [reason.value for reason in check.reasons]) for check in CHECKS]
    assert readme_checks() == built_in + [("rule:<name>", ["rule:<name>"])]


def test_the_checks_run_in_the_documented_order() -> None:
    assert [c.name for c in CHECKS] == ["fit", "health", "backend", "in_flight", "user_share", "vram",
                                        "gpu_utilisation", "latency_sla"]


def test_a_verdict_reads_as_the_evidence_shows_it() -> None:
    assert PASS.text == "pass" and PASS.reason is None
    assert abstain("no latency sample yet").text == "abstain: no latency sample yet"
    held = block(Reason.VRAM_HEADROOM, "1.00 GiB free < 1.5 GiB")
    assert (held.text, held.reason) == ("block: 1.00 GiB free < 1.5 GiB", Reason.VRAM_HEADROOM)
    assert block(Reason.RULE, rule="night").text == "block"
    assert probe("3000 ms > 1000 ms").reason is Reason.SLA_PROBE


def test_a_decision_is_labelled_by_its_reason_or_its_rule() -> None:
    assert Decision("smart", "gemma4-smart", Reason.COMPLEX, 0.9, {}).label == "complex"
    assert Decision("fast", "gemma4-fast", Reason.RULE, 0.9, {}, rule="interns").label == "rule:interns"
    assert str(Reason.LATENCY_SLA) == f"{Reason.LATENCY_SLA}" == "latency_sla"


def test_a_decision_names_its_rule_exactly_when_a_rule_decided() -> None:
    with pytest.raises(ValueError):
        Decision("fast", "gemma4-fast", Reason.RULE, 0.9, {})
    with pytest.raises(ValueError):
        Decision("fast", "gemma4-fast", Reason.SIMPLE, 0.1, {}, rule="interns")
