"""The ladder end to end: a real gateway started with ``examples/ladder.yaml`` as it is, in
front of real llama.cpp servers (SmolLM2-135M on CPU). The stub backend stands in only for
the tier that must stall on demand, so that its time to first token goes above the SLA.

Two ladders: two local tiers and the overflow tier (the example's), and three local tiers
(the example's model list, with its third entry as a local top rung)."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from gateway import ROOT, Gateway
from servers import LlamaServer, StubBackend

EXAMPLE = ROOT / "examples" / "ladder.yaml"
STRATUM = Path(sys.executable).with_name("stratum")


def example_section() -> dict[str, Any]:
    return copy.deepcopy(yaml.safe_load(EXAMPLE.read_text())["callback_settings"]["stratum"])


def ask(gw: Gateway, content: str, stream: bool = True) -> tuple[str, str]:
    """(tier, reason) the router gave a request, from its response headers."""
    with gw.client().chat.completions.with_streaming_response.create(
        model="gemma4-auto", messages=[{"role": "user", "content": content}], max_tokens=4, stream=stream,
    ) as response:
        for _ in response.iter_lines():  # read to the end: the call's callbacks then run
            pass
        return response.headers["x-stratum-tier"], response.headers["x-stratum-reason"]


def settings_file(tmp: Path, section: dict[str, Any]) -> Path:
    path = tmp / "stratum.yaml"
    path.write_text(yaml.safe_dump({"stratum": section}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def llama_overflow(llama_build: tuple[Path, Path]) -> Iterator[LlamaServer]:
    with LlamaServer(alias="cloud-overflow", slots=2) as server:
        yield server


def test_the_example_routes_up_the_ladder_and_overflows_only_while_smart_is_held_off(
    llama_fast: LlamaServer, llama_overflow: LlamaServer, tmp_path: Path
) -> None:
    section = example_section()
    # A sample replaces the average at once (instead of after several slow ones), no probe
    # during the test, and a budget small enough to spend here.
    section["latency"].update(ema_alpha=1.0, probe_interval_s=600)
    section["tiers"]["cloud-overflow"]["budget"] = {"requests_per_hour": 2, "spend_per_day_usd": 2.0}
    # The overflow stand-in is SmolLM2 on a shared CPU: its own SLA must not be what this tests.
    section["tiers"]["cloud-overflow"]["sla_ms"] = 120_000
    with StubBackend(name="smart-stub") as smart, Gateway(
        llama_fast.api_base, smart.api_base, config=EXAMPLE, stratum_file=settings_file(tmp_path, section),
        env={"STRATUM_OVERFLOW_API_BASE": llama_overflow.api_base},
    ) as gw:
        assert ask(gw, SIMPLE_PROMPT) == ("fast", "simple")
        assert ask(gw, COMPLEX_PROMPT) == ("smart", "complex")

        smart.set_behaviour(ttft_ms=2500)  # above the smart tier's 2000 ms SLA
        assert ask(gw, COMPLEX_PROMPT) == ("smart", "complex")  # the slow one: now measured
        served = smart.requests()
        assert ask(gw, COMPLEX_PROMPT) == ("cloud-overflow", "latency_sla")
        assert ask(gw, SIMPLE_PROMPT) == ("fast", "simple")  # never takes what fast can serve
        assert ask(gw, COMPLEX_PROMPT + " again", stream=False) == ("cloud-overflow", "latency_sla")
        assert len(smart.requests()) == len(served)  # smart was not asked while held off
        left = gw.metric("stratum_budget_left", tier="cloud-overflow", limit="spend_per_day_usd")
        assert left is not None and left < 2.0  # LiteLLM's cost of the calls was counted

        # The hourly request budget (2) is spent: down the ladder, as without an overflow tier.
        assert ask(gw, COMPLEX_PROMPT) == ("fast", "latency_sla")
        assert gw.metric("stratum_budget_left", tier="cloud-overflow", limit="requests_per_hour") == 0
        assert gw.metric("stratum_decisions_total", tier="cloud-overflow", reason="latency_sla") == 2


def test_three_local_tiers_pass_a_held_off_top_rung_to_the_one_below(
    llama_fast: LlamaServer, llama_smart: LlamaServer, tmp_path: Path
) -> None:
    out = subprocess.run([str(STRATUM), "score", COMPLEX_PROMPT], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    score = float(out.stdout.split()[0])
    section = example_section()
    top = section["tiers"].pop("cloud-overflow")
    section["tiers"]["smart"]["entry_score"] = round(score / 2, 4)
    section["tiers"]["big"] = {"model_group": top["model_group"], "entry_score": round(score - 0.01, 4),
                               "sla_ms": 2000}
    section["latency"].update(ema_alpha=1.0, probe_interval_s=600)
    with StubBackend(name="big-stub") as big, Gateway(
        llama_fast.api_base, llama_smart.api_base, config=EXAMPLE, stratum_file=settings_file(tmp_path, section),
        env={"STRATUM_OVERFLOW_API_BASE": big.api_base},
    ) as gw:
        assert ask(gw, COMPLEX_PROMPT) == ("big", "complex")
        big.set_behaviour(ttft_ms=2500)
        assert ask(gw, COMPLEX_PROMPT) == ("big", "complex")  # the slow one
        assert ask(gw, COMPLEX_PROMPT) == ("smart", "latency_sla")  # one rung down, not to fast
        assert ask(gw, SIMPLE_PROMPT) == ("fast", "simple")
        assert gw.metric("stratum_tier_entry_score", tier="big") == round(score - 0.01, 4)
        assert gw.metric("stratum_decisions_total", tier="smart", reason="latency_sla") == 1
