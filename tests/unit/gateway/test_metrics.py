"""The router's gauges: read from the engine's stats, shown only for a published engine."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import COMPLEX_PROMPT
from stratum_litellm.config import parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.routing.decision import Reason


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    exposition = generate_latest(REGISTRY).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(exposition)
        for s in family.samples
        if s.name.startswith("stratum_")
    }


def test_importing_the_metrics_registers_no_collector() -> None:
    # Gauges appear when someone starts an engine for a gateway, not because a module was imported.
    code = ("import stratum_litellm.gateway.metrics as m, stratum_litellm.gateway.engine; "
            "from prometheus_client import REGISTRY, generate_latest; "
            "print(m.published() is None, b'stratum_tier_in_flight' in generate_latest(REGISTRY))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["True", "False"], out.stderr


def test_a_published_engine_shows_its_stats_and_a_closed_one_vanishes() -> None:
    previous = metrics.published()
    engine = RouterEngine(parse_settings({"gpu": {"enabled": False}, "complexity": {"threshold": 0.4}}))
    try:
        metrics.publish(engine)
        engine.route({"model": "gemma4-auto", "litellm_call_id": "m1",
                      "messages": [{"role": "user", "content": COMPLEX_PROMPT}]})
        shown = samples()
        assert shown[("stratum_tier_in_flight", (("tier", "smart"),))] == 1.0
        assert shown[("stratum_tier_in_flight", (("tier", "fast"),))] == 0.0
        assert shown[("stratum_threshold", ())] == 0.4
        # GPU monitoring is off: no GPU signal to report, rather than one forever unknown.
        assert not [name for name, _ in shown if name.startswith("stratum_gpu_")]
        stats = engine.stats()
        assert stats.latency["smart"].in_flight == 1 and stats.gpus == {} and stats.backends == {}
        engine.close()
        assert metrics.published() is None
        assert ("stratum_tier_in_flight", (("tier", "smart"),)) not in samples()
    finally:
        engine.close()
        if previous is not None:
            metrics.publish(previous)


def test_a_broken_stats_read_costs_the_gauges_not_the_scrape() -> None:
    previous = metrics.published()
    engine = RouterEngine(parse_settings({"gpu": {"enabled": False}}))

    def broken() -> None:
        raise RuntimeError("boom")

    engine.stats = broken  # type: ignore[method-assign]
    try:
        metrics.publish(engine)
        shown = samples()  # the scrape still answers
        assert ("stratum_threshold", ()) not in shown
        assert engine.error_count == 1
    finally:
        engine.close()
        if previous is not None:
            metrics.publish(previous)


def test_counters_start_at_zero_for_every_known_label_so_panels_read_0_not_no_data() -> None:
    # A fresh process: the counters of this one have seen other tests' traffic.
    code = """
import json
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from stratum_litellm.config import parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine
engine = RouterEngine(parse_settings({"gpu": {"enabled": False}, "tiers": {
    "fast": {"model_group": "a"}, "mid": {"model_group": "b", "entry_score": 0.5},
    "top": {"model_group": "c", "entry_score": 0.8}}}))
metrics.publish(engine)
rows = [(s.name, s.labels, s.value) for f in text_string_to_metric_families(generate_latest(REGISTRY).decode())
        for s in f.samples if s.name.endswith("_total") and s.name.startswith("stratum_")]
print(json.dumps(rows))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    rows = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else pytest.fail(out.stderr)
    assert all(value == 0 for _, _, value in rows)
    decided = {(labels["tier"], labels["reason"]) for name, labels, _ in rows if name == "stratum_decisions_total"}
    assert decided == {(tier, str(reason)) for tier in ("fast", "mid", "top") for reason in Reason}
    reloads = {labels["result"] for name, labels, _ in rows if name == "stratum_config_reloads_total"}
    errors = {labels["where"] for name, labels, _ in rows if name == "stratum_internal_errors_total"}
    assert reloads == {"ok", "error"} and errors == set(metrics.ERROR_PLACES)
    assert not any(name == "stratum_shadow_decisions_total" for name, _, _ in rows)  # not in shadow mode


def test_every_place_that_records_an_error_is_a_known_label() -> None:
    import re
    from pathlib import Path

    package = Path(metrics.__file__).resolve().parents[1]
    places = {m.group(1) for f in package.rglob("*.py")
              for m in re.finditer(r'(?:record_error|fail_open)\((?:[^()]*, )?"(\w+)"', f.read_text())}
    assert places and places <= set(metrics.ERROR_PLACES), places - set(metrics.ERROR_PLACES)
