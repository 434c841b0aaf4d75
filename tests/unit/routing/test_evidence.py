"""The evidence every decision carries, pinned case by case.

Response headers, ``metadata.stratum``, ``stratum explain`` and the e2e tests read a
decision's evidence (``evidence["checks"]`` and the readings next to it), so for the same
situation it must stay exactly the same: keys, their order, and their text. Each case (in
data/evidence_cases.json) starts from a smart tier with room on every signal and changes one
thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from stratum_litellm.config import parse_settings
from stratum_litellm.routing.checks import CHECKS
from stratum_litellm.routing.policy import Policy
from stratum_litellm.routing.rules import RequestMeta, RuleInput, RuleOutcome
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.signals.backends import BackendLoad
from stratum_litellm.signals.gpu import GpuReading
from stratum_litellm.signals.latency import TierLatency
from stratum_litellm.signals.snapshot import SignalSnapshot, TierSignals
from scorers import FixedScorer  # tests/support

GIB = 1024**3
NOW = 100.0


def gpu(free_gib: float = 8.0, util: float = 10.0) -> GpuReading:
    return GpuReading(0, "test", 16 * GIB, int(free_gib * GIB), int((16 - free_gib) * GIB), util, 0.0)


def latency(ttft: float | None = 300.0, total: float | None = 900.0, in_flight: int = 0,
            last_sample_at: float | None = 99.0, failures: int = 0, unhealthy_until: float = 0.0,
            probe_in_flight: bool = False, last_probe_at: float | None = None) -> TierLatency:
    return TierLatency(ttft, total, 0 if total is None else 3, in_flight, last_sample_at, failures,
                       unhealthy_until, probe_in_flight, last_probe_at)


def load(status: str = "ok", error: str | None = None, waiting: int | None = 0, kv: float | None = 0.2,
         slots: int | None = 4, idle: int | None = 3, loaded: bool | None = True) -> BackendLoad:
    return BackendLoad(kind="llamacpp", url="http://127.0.0.1:1", status=status, error=error, requests_running=1,
                       requests_waiting=waiting, kv_cache_usage=kv, slots_total=slots, slots_idle=idle,
                       model_loaded=loaded, taken_at=0.0)


def rule(behaviour: str, name: str) -> Any:
    def fn(inp: RuleInput) -> Any:
        if behaviour == "raise":
            raise RuntimeError("boom")
        return {"fast": RuleOutcome(tier="fast"), "smart": RuleOutcome(tier="smart"),
                "delta": RuleOutcome(score_delta=0.3), "none": None, "junk": "fast"}[behaviour]

    fn.__name__ = name
    return fn


def decide(score: float = 0.9, model: str = "gemma4-auto", raw: dict[str, Any] | None = None,
           smart_gpu: GpuReading | None | str = "default", busy: bool | None = False,
           smart_latency: TierLatency | None = None, backend: BackendLoad | None | str = "default",
           gpu_status: str = "ok", gpu_error: str | None = None, rules: tuple[tuple[str, str, str], ...] = (),
           meta: RequestMeta | None = None, sticky: str | None = None, now: float | None = None) -> Any:
    policy = Policy(parse_settings(raw or {}), scorer=FixedScorer(score))  # type: ignore[arg-type]
    for position, behaviour, name in rules:
        policy.add_rule(rule(behaviour, name), position=position)  # type: ignore[arg-type]
    reading = gpu() if smart_gpu == "default" else smart_gpu
    smart = TierSignals(reading, busy if reading is not None else None, smart_latency or latency(),
                        load() if backend == "default" else backend)  # type: ignore[arg-type]
    fast = TierSignals(None, None, latency(None, None, last_sample_at=None), None)
    snapshot = SignalSnapshot({"fast": fast, "smart": smart}, gpu_status, gpu_error, NOW)
    view = RequestView.from_prompt("a question")
    return policy.decide(view, model, snapshot, meta, now, sticky)  # type: ignore[arg-type]


#: The cases, in data/evidence_cases.json: ``settings`` names the settings several cases
#: share, and each case is {"id", "situation", "expected": [tier, label, probe], "evidence"}
#: with the evidence exactly as the decision gives it. A situation holds ``decide()``'s
#: arguments, as JSON: ``raw`` is a settings document or the name of one in ``settings``;
#: ``smart_latency``, ``backend``, ``smart_gpu`` and ``meta`` are the keyword arguments of
#: ``latency()``, ``load()``, ``gpu()`` and ``RequestMeta`` (``{}``: their defaults; null:
#: None); ``rules`` is a list of [position, behaviour, name].
DATA = Path(__file__).with_name("data") / "evidence_cases.json"
BUILDERS: dict[str, Callable[..., Any]] = {"smart_latency": latency, "backend": load, "smart_gpu": gpu,
                                           "meta": RequestMeta}


def situation(given: dict[str, Any], settings: dict[str, Any]) -> dict[str, Any]:
    """``decide()``'s keyword arguments for a situation as data/evidence_cases.json writes it."""
    out = dict(given)
    if isinstance(out.get("raw"), str):
        out["raw"] = settings[out["raw"]]
    for key, build in BUILDERS.items():
        if out.get(key) is not None:
            out[key] = build(**out[key])
    if "rules" in out:
        out["rules"] = tuple(tuple(r) for r in out["rules"])
    return out


def load_cases() -> list[Any]:
    document = json.loads(DATA.read_text())
    return [pytest.param(situation(case["situation"], document["settings"]), tuple(case["expected"]),
                         case["evidence"], id=case["id"]) for case in document["cases"]]


#: (situation, (tier, label, probe), evidence) as the decision gives them.
CASES = load_cases()


@pytest.mark.parametrize(("situation", "expected", "evidence"), CASES)
def test_the_decision_and_its_evidence_are_exactly_as_pinned(
    situation: dict[str, Any], expected: tuple[str, str, bool], evidence: dict[str, Any]
) -> None:
    d = decide(**situation)
    assert (d.tier, d.label, d.probe) == expected
    # Compared as JSON, as readers get it: key order and int against float count too.
    assert json.dumps(d.evidence, indent=1) == json.dumps(evidence, indent=1)


#: The check each capacity reason comes from, as the checks declare it.
CHECK_OF = {reason.value: check.name for check in CHECKS for reason in check.reasons}


@pytest.mark.parametrize(("situation", "expected", "evidence"), [c for c in CASES if c.values[1][1] in CHECK_OF])
def test_a_capacity_reason_comes_from_the_check_that_declares_it(
    situation: dict[str, Any], expected: tuple[str, str, bool], evidence: dict[str, Any]
) -> None:
    d = decide(**situation)
    deciding = [name for name, text in d.evidence["checks"].items() if text.startswith(("block", "probe"))]
    assert deciding[-1] == CHECK_OF[d.label]


def test_a_model_that_is_not_the_routers_gets_no_decision() -> None:
    assert decide(model="gpt-4o") is None


def test_the_fallback_says_what_failed_in_at_most_200_characters() -> None:
    d = Policy(parse_settings({})).fallback(RuntimeError("x" * 300))
    assert (d.tier, d.model_group, d.label, d.score, d.probe) == ("fast", "gemma4-fast", "router_error", None, False)
    assert d.evidence == {"error": "x" * 200}
