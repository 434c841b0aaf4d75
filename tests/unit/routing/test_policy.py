"""The rule chain: forced, complexity, capacity (each able to abstain), custom rules.

The scorer is replaced by a fixed-score one here so each rule is exercised on its own; the
real scorer is tested in unit/scoring/test_scorer.py and end to end in e2e/test_gateway_e2e.py. GPU
readings are given as snapshot values; the NVML path that produces them is tested against
a real pynvml in integration/test_gpu.py. The exact evidence of each check is pinned in
unit/routing/test_evidence.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, strategies as st

from stratum_litellm.routing.decision import Reason
from stratum_litellm.routing.policy import Policy
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.routing.rules import RequestMeta, RuleInput, RuleOutcome
from stratum_litellm.config import parse_settings
from stratum_litellm.signals.backends import BackendLoad
from stratum_litellm.signals.gpu import GpuReading, GpuSnapshot
from stratum_litellm.signals.snapshot import Signals
from waiting import FakeClock
from scorers import FixedScorer  # tests/support

GIB = 1024**3


class StaticGpu:
    """Serves a fixed snapshot in place of the NVML poller."""

    def __init__(self, free_gib: float | None = 8.0, util: float = 10.0) -> None:
        self.set(free_gib, util)

    def set(self, free_gib: float | None, util: float = 10.0) -> None:
        if free_gib is None:
            self.snap = GpuSnapshot(readings={}, taken_at=0.0, status="unknown", error="NVML library not found")
        else:
            reading = GpuReading(0, "test", 16 * GIB, int(free_gib * GIB), int((16 - free_gib) * GIB), util, 0.0)
            self.snap = GpuSnapshot(readings={0: reading}, taken_at=1.0, status="ok", error=None)

    def snapshot(self) -> GpuSnapshot:
        return self.snap

    def stop(self) -> None:
        pass



def make(score: float, raw: dict[str, Any] | None = None, gpu: StaticGpu | None = None, clock: FakeClock | None = None):
    settings = parse_settings(raw or {})
    clock = clock or FakeClock(100.0)
    signals = Signals(settings, gpu_monitor=gpu, clock=clock)
    policy = Policy(settings, scorer=FixedScorer(score))  # type: ignore[arg-type]
    return policy, signals, clock


VIEW = RequestView.from_prompt("a question")


def decide(policy: Policy, signals: Signals, model: str = "gemma4-auto", meta: RequestMeta | None = None):
    return policy.decide(VIEW, model, signals.snapshot(), meta)


def test_simple_goes_fast_complex_goes_smart_at_the_threshold() -> None:
    assert decide(*make(0.64)[:2]).tier == "fast"
    d = decide(*make(0.65)[:2])
    assert (d.tier, d.model_group, d.label) == ("smart", "gemma4-smart", "complex")
    assert (d.reason, d.rule) == (Reason.COMPLEX, None)


def test_forced_tiers_pass_untouched_and_foreign_models_are_not_ours() -> None:
    policy, signals, _ = make(0.99, gpu=StaticGpu(free_gib=0.1))
    d = decide(policy, signals, "gemma4-smart")
    assert (d.tier, d.label, d.model_group) == ("smart", "forced", "gemma4-smart")
    assert decide(policy, signals, "gpt-4o") is None


def test_unknown_gpu_makes_the_gpu_rules_abstain_visibly() -> None:
    policy, signals, _ = make(0.9, gpu=StaticGpu(free_gib=None))
    d = decide(policy, signals)
    assert d.tier == "smart"
    assert d.evidence["checks"]["vram"].startswith("abstain: GPU unknown (NVML library not found")
    assert d.evidence["checks"]["gpu_utilisation"].startswith("abstain")


def test_vram_headroom_holds_the_smart_tier_off() -> None:
    gpu = StaticGpu(free_gib=1.0)
    policy, signals, _ = make(0.9, gpu=gpu)
    d = decide(policy, signals)
    assert (d.tier, d.label) == ("fast", "vram_headroom")
    assert d.evidence["smart_gpu_free_gib"] == pytest.approx(1.0)
    gpu.set(free_gib=2.0)
    assert decide(policy, signals).tier == "smart"


def test_utilisation_circuit_has_hysteresis() -> None:
    gpu = StaticGpu(free_gib=8.0, util=95.0)
    policy, signals, _ = make(0.9, gpu=gpu)
    assert decide(policy, signals).label == "gpu_busy"
    gpu.set(8.0, util=80.0)  # below trip, above reset: still open
    assert decide(policy, signals).label == "gpu_busy"
    gpu.set(8.0, util=70.0)
    assert decide(policy, signals).label == "complex"


def test_gpu_index_per_tier_reads_the_smart_tiers_gpu() -> None:
    raw = {"tiers": {"fast": {"model_group": "gemma4-fast", "gpu_index": 0},
                     "smart": {"model_group": "gemma4-smart", "gpu_index": 1}}}
    policy, signals, _ = make(0.9, raw, gpu=StaticGpu(free_gib=0.5))
    d = decide(policy, signals)
    # GPU 1 is absent from the snapshot: abstain, and say which index is missing.
    assert d.tier == "smart"
    assert "no GPU at index 1" in d.evidence["checks"]["vram"]


def test_latency_sla_holds_off_then_probes_then_returns() -> None:
    policy, signals, clock = make(0.9, {"latency": {"sla_ms": 1000, "probe_interval_s": 5}})
    lat = signals.latency
    assert decide(policy, signals).evidence["checks"]["latency_sla"].startswith("abstain")
    lat.observe_success(None, "smart", ttft_ms=3000.0, total_ms=6000.0)
    assert decide(policy, signals).label == "latency_sla"
    clock.now += 6.0
    d = decide(policy, signals)
    assert (d.tier, d.label, d.probe) == ("smart", "sla_probe", True)
    lat.begin("p", "smart", probe=True)
    # Only one probe at a time.
    assert decide(policy, signals).label == "latency_sla"
    lat.observe_success("p", "smart", ttft_ms=300.0, total_ms=900.0)
    assert decide(policy, signals).label == "complex"


def test_sla_measured_on_total_when_configured() -> None:
    policy, signals, _ = make(0.9, {"latency": {"sla_ms": 1000, "measure": "total"}})
    signals.latency.observe_success(None, "smart", ttft_ms=100.0, total_ms=5000.0)
    assert decide(policy, signals).label == "latency_sla"
    policy, signals, _ = make(0.9, {"latency": {"sla_ms": 1000, "measure": "ttft"}})
    signals.latency.observe_success(None, "smart", ttft_ms=100.0, total_ms=5000.0)
    assert decide(policy, signals).label == "complex"


def test_in_flight_limit_spills_a_burst_to_fast() -> None:
    raw = {"tiers": {"fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart", "max_in_flight": 2}}}
    policy, signals, _ = make(0.9, raw)
    tiers = []
    for i in range(5):
        d = decide(policy, signals)
        signals.latency.begin(f"c{i}", d.tier)
        tiers.append(d.tier)
    assert tiers == ["smart", "smart", "fast", "fast", "fast"]
    assert decide(policy, signals).label == "smart_saturated"


def test_failure_streak_makes_smart_unhealthy_for_the_cooldown() -> None:
    policy, signals, clock = make(0.9, {"latency": {"failure_threshold": 2, "cooldown_s": 10}})
    for _ in range(2):
        signals.latency.observe_failure(None, "smart", total_ms=1.0)
    assert decide(policy, signals).label == "smart_unhealthy"
    clock.now += 11
    assert decide(policy, signals).label == "complex"


def test_config_rules_join_the_chain_at_their_position() -> None:
    raw = {
        "rules": [
            {"name": "contracts", "keywords": ["contract"], "route": "smart"},
            {"name": "boost-proofs", "pattern": r"\bprove\b", "score_delta": 0.3},
            {"name": "interns-fast", "position": "last", "key_aliases": ["intern"], "route": "fast"},
        ]
    }
    policy, signals, _ = make(0.4, raw)
    view = RequestView.from_prompt("Please review this Contract.")
    d = policy.decide(view, "gemma4-auto", signals.snapshot())
    assert (d.tier, d.label) == ("smart", "rule:contracts")
    assert (d.reason, d.rule) == (Reason.RULE, "contracts")
    # Whole words only.
    d = policy.decide(RequestView.from_prompt("the contractor called"), "gemma4-auto", signals.snapshot())
    assert d.tier == "fast"
    d = policy.decide(RequestView.from_prompt("prove it"), "gemma4-auto", signals.snapshot())
    assert (d.tier, d.label, d.score) == ("smart", "complex", pytest.approx(0.7))
    d = policy.decide(view, "gemma4-auto", signals.snapshot(), RequestMeta(key_alias="intern"))
    assert (d.tier, d.label, d.evidence["overridden"]) == ("fast", "rule:interns-fast", "rule:contracts")


@pytest.mark.parametrize("pattern, hostile, matching", [
    (r"(a|aa)+$", "a" * 33 + "!", "say aaaa"),
    (r"(\w+\s?){1,100}$", "word " * 1000 + "!", "just words"),
    (r".*.*.*=x", "=" * 3000 + "y", "a=x"),
    (r"(a+)+$", "a" * 5000 + "b", "baaa"),
])
def test_patterns_that_backtrack_in_python_are_matched_in_linear_time(pattern: str, hostile: str, matching: str) -> None:
    # Python's re takes seconds or more on each hostile prompt (exponential or polynomial
    # backtracking); RE2 has none, so the rule answers at once, and still matches right.
    policy, signals, _ = make(0.1, {"rules": [{"name": "hostile", "pattern": pattern, "route": "smart"}]})
    assert policy.decide(RequestView.from_prompt(hostile), "gemma4-auto", signals.snapshot()).tier == "fast"
    d = policy.decide(RequestView.from_prompt(matching), "gemma4-auto", signals.snapshot())
    assert (d.tier, d.label) == ("smart", "rule:hostile")


def test_python_rules_at_capacity_and_a_raising_rule_abstains() -> None:
    policy, signals, _ = make(0.9)

    def night_shift(inp: RuleInput) -> RuleOutcome | None:
        return RuleOutcome(tier="fast")

    def broken(inp: RuleInput) -> RuleOutcome | None:
        raise RuntimeError("boom")

    policy.add_rule(broken, position="first")
    d = decide(policy, signals)
    assert d.tier == "smart" and "boom" in d.evidence["rule_errors"]["broken"]
    policy.add_rule(night_shift, position="capacity")
    d = decide(policy, signals)
    assert (d.tier, d.label) == ("fast", "rule:night_shift")


def test_python_rules_from_config_are_imported(tmp_path, monkeypatch) -> None:
    (tmp_path / "my_rules.py").write_text(
        "from stratum_litellm.routing.rules import RuleOutcome\n"
        "def long_ones(inp):\n    return RuleOutcome(tier='smart') if len(inp.view.last_user) > 20 else None\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    policy, signals, _ = make(0.0, {"python_rules": [{"callable": "my_rules:long_ones"}]})
    assert policy.decide(RequestView.from_prompt("x" * 30), "gemma4-auto", signals.snapshot()).label == "rule:long_ones"
    from stratum_litellm.config import SettingsError

    with pytest.raises(SettingsError, match="cannot load 'my_rules:nope'"):
        make(0.0, {"python_rules": [{"callable": "my_rules:nope"}]})


def test_fallback_is_the_tier_without_the_plugin() -> None:
    policy, _, _ = make(0.9)
    d = policy.fallback(RuntimeError("x"))
    assert (d.tier, d.model_group, d.label) == ("fast", "gemma4-fast", "router_error")


@given(
    score=st.floats(0, 1),
    free=st.one_of(st.none(), st.floats(0, 16)),
    util=st.floats(0, 100),
    ema=st.one_of(st.none(), st.floats(0, 10_000)),
    in_flight=st.integers(0, 4),
)
def test_smart_only_when_complex_and_every_capacity_rule_allows(score, free, util, ema, in_flight) -> None:
    raw = {"tiers": {"fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart", "max_in_flight": 3}}}
    policy, signals, _ = make(score, raw, gpu=StaticGpu(free_gib=free, util=util))
    if ema is not None:
        signals.latency.observe_success(None, "smart", ttft_ms=ema, total_ms=ema)
    for i in range(in_flight):
        signals.latency.begin(f"c{i}", "smart")
    d = decide(policy, signals)
    allowed = (
        score >= 0.65
        and in_flight < 3
        and (free is None or free >= 1.5)
        and (free is None or util < 90)
        and (ema is None or ema <= 2000)
    )
    assert (d.tier == "smart") == allowed
    assert d.label in {"simple", "complex", "smart_saturated", "vram_headroom", "gpu_busy", "latency_sla"}


class StaticBackends:
    """Serves fixed backend readings in place of the HTTP poller (tested against a real
    llama-server in test_backend_signals.py)."""

    def __init__(self, **loads: BackendLoad) -> None:
        self.loads = loads

    def snapshot(self) -> dict[str, BackendLoad]:
        return self.loads

    def warm_up(self, tier: str) -> None:
        self.warmed = tier

    def stop(self) -> None:
        pass


def load(status: str = "ok", waiting: int | None = 0, slots: int | None = 2, idle: int | None = 2,
         loaded: bool | None = True) -> BackendLoad:
    return BackendLoad(kind="llamacpp", url="http://127.0.0.1:1", status=status, error=None if status == "ok" else status,
                       requests_running=0, requests_waiting=waiting, kv_cache_usage=None, slots_total=slots,
                       slots_idle=idle, model_loaded=loaded, taken_at=0.0)


def with_backend(score: float, smart: BackendLoad, raw: dict[str, Any] | None = None):
    settings = parse_settings(raw or {})
    signals = Signals(settings, clock=FakeClock(100.0), backend_poller=StaticBackends(smart=smart))  # type: ignore[arg-type]
    return Policy(settings, scorer=FixedScorer(score)), signals  # type: ignore[arg-type]


@pytest.mark.parametrize(("smart", "reason"), [
    (load(), "complex"),
    (load(status="down"), "smart_down"),
    (load(status="loading", loaded=False), "smart_loading"),
    (load(waiting=3, idle=0), "smart_queue_full"),
    (load(status="unknown", waiting=None, slots=None, idle=None, loaded=None), "complex"),
])
def test_the_smart_backends_own_load_holds_it_off(smart: BackendLoad, reason: str) -> None:
    d = decide(*with_backend(0.9, smart))
    assert d.label == reason
    assert ("abstain" in d.evidence["checks"]["backend"]) == (smart.status == "unknown")


def test_the_backends_slot_count_is_the_in_flight_limit_when_none_is_set() -> None:
    policy, signals = with_backend(0.9, load(slots=2, idle=2))
    signals.latency.begin("a", "smart")
    assert decide(policy, signals).label == "complex"
    signals.latency.begin("b", "smart")
    assert decide(policy, signals).label == "smart_saturated"


def test_forced_smart_requests_go_unless_the_operator_redirects_them() -> None:
    down = load(status="down")
    assert decide(*with_backend(0.9, down), model="gemma4-smart").label == "forced"
    d = decide(*with_backend(0.9, down, {"backend_polling": {"redirect_forced_when_unavailable": True}}),
               model="gemma4-smart")
    assert (d.tier, d.label) == ("fast", "forced_redirected")


def test_rules_match_metadata_fields_and_headers() -> None:
    raw = {"rules": [{"name": "legal-app", "metadata": {"app": "legal"}, "headers": {"X-Priority": "*"}, "route": "smart"}]}
    policy, signals, _ = make(0.1, raw)
    both = RequestMeta(metadata={"app": "legal"}, headers={"x-priority": "high"})
    assert decide(policy, signals, meta=both).label == "rule:legal-app"
    assert decide(policy, signals, meta=RequestMeta(metadata={"app": "legal"})).label == "simple"
    assert decide(policy, signals, meta=RequestMeta(metadata={"app": "other"}, headers={"x-priority": "1"})).label == "simple"


def test_a_per_request_override_works_only_for_allowed_keys() -> None:
    raw = {"override": {"allowed_key_aliases": ["ops"], "allowed_teams": ["research"]}}
    policy, signals, _ = make(0.1, raw, gpu=StaticGpu(free_gib=0.1))
    d = decide(policy, signals, meta=RequestMeta(key_alias="ops", headers={"x-stratum-tier": "smart"}))
    assert (d.tier, d.label) == ("smart", "override")
    d = decide(policy, signals, meta=RequestMeta(team_id="research", metadata={"stratum_tier": "smart"}))
    assert d.label == "override"
    d = decide(policy, signals, meta=RequestMeta(key_alias="intern", headers={"x-stratum-tier": "smart"}))
    assert (d.tier, d.label) == ("fast", "simple")
    assert "may not choose" in d.evidence["override"]
    d = decide(policy, signals, meta=RequestMeta(key_alias="ops", headers={"x-stratum-tier": "huge"}))
    assert d.label == "simple" and "expected one of fast, smart" in d.evidence["override"]
