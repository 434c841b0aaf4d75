"""The router's gauges: read from the engine's stats, shown only for a published engine."""

from __future__ import annotations

import subprocess
import sys

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from conftest import COMPLEX_PROMPT
from stratum_litellm.config import parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine


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
        assert shown[("stratum_gpu_known", (("gpu", "0"),))] == 0.0  # GPU monitoring is off: unknown
        stats = engine.stats()
        assert stats.latency["smart"].in_flight == 1 and stats.gpus == {0: None} and stats.backends == {}
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
