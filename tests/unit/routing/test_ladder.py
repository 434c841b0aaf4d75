"""The ladder: a request climbs to the highest tier its score reaches that has room, the
overflow tier stands in only for a wanted tier held off, and nothing goes above the score."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from stratum_litellm.config import BudgetSettings, SettingsError, parse_settings
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.routing.affinity import AffinityStore
from stratum_litellm.routing.policy import Policy
from stratum_litellm.routing.rules import RequestMeta, RuleOutcome
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.signals.budget import BudgetLeft, BudgetTracker
from stratum_litellm.signals.latency import TierLatency
from stratum_litellm.signals.snapshot import SignalSnapshot, Signals, TierSignals
from waiting import FakeClock
from scorers import FixedScorer  # tests/support

NOW = 1000.0
BUDGET = {"requests_per_hour": 10}


def ladder_settings(entries: list[float], overflow: bool = False, **extra: Any) -> dict[str, Any]:
    """Local tiers t0..tN (t0 the floor) with these entry scores above the first."""
    tiers: dict[str, Any] = {"t0": {"model_group": "g0"}}
    for i, entry in enumerate(entries, start=1):
        tiers[f"t{i}"] = {"model_group": f"g{i}", "entry_score": entry}
    if overflow:
        tiers["cloud"] = {"model_group": "hosted", "overflow": True, "budget": BUDGET}
    return {"tiers": tiers, "gpu": {"enabled": False}, **extra}


def latency(unhealthy: bool = False) -> TierLatency:
    return TierLatency(None, None, 0, 0, None, 3 if unhealthy else 0, NOW + 30 if unhealthy else 0.0, False, None)


def snapshot(tiers: list[str], held: set[str], budget_spent: bool = False, overflow: str | None = None) -> SignalSnapshot:
    signals = {t: TierSignals(None, None, latency(t in held), None) for t in tiers}
    if overflow is not None:
        left = BudgetLeft(0 if budget_spent else 5, None, None, None,
                          "requests_per_hour spent (10 of 10)" if budget_spent else None)
        signals[overflow] = TierSignals(None, None, latency(overflow in held), None, left)
    return SignalSnapshot(signals, "unknown", "GPU monitoring is off", NOW)


def decide(raw: dict[str, Any], score: float, held: set[str] = frozenset(), budget_spent: bool = False,
           sticky: str | None = None, meta: RequestMeta | None = None, policy: Policy | None = None) -> Any:
    policy = policy or Policy(parse_settings(raw), scorer=FixedScorer(score))  # type: ignore[arg-type]
    ladder = policy.ladder
    snap = snapshot(list(ladder.local), set(held), budget_spent, ladder.overflow)
    return policy.decide(RequestView.from_prompt("q"), "gemma4-auto", snap, meta, NOW, sticky)


@st.composite
def ladders(draw: Any) -> tuple[dict[str, Any], list[str], bool]:
    rungs = draw(st.integers(min_value=2, max_value=5))
    cuts = sorted(draw(st.lists(st.integers(min_value=1, max_value=99), min_size=rungs - 1, max_size=rungs - 1,
                                unique=True)))
    entries = [c / 100 for c in cuts]
    overflow = draw(st.booleans())
    names = [f"t{i}" for i in range(rungs)]
    return ladder_settings(entries, overflow), names, overflow


@hsettings(max_examples=400, deadline=None)
@given(ladders(), st.floats(min_value=0.0, max_value=1.0), st.data())
def test_the_chosen_tier_is_the_highest_the_score_reaches_with_room_or_the_overflow(
    shape: tuple[dict[str, Any], list[str], bool], score: float, data: Any
) -> None:
    raw, names, has_overflow = shape
    candidates = names[1:] + (["cloud"] if has_overflow else [])
    held = set(data.draw(st.lists(st.sampled_from(candidates), unique=True))) if candidates else set()
    spent = data.draw(st.booleans())
    decision = decide(raw, score, held, spent)
    entries = [0.0] + [raw["tiers"][n]["entry_score"] for n in names[1:]]
    wanted = max(i for i, e in enumerate(entries) if score >= e)

    if wanted == 0 or names[wanted] not in held:
        expected = names[wanted]
    elif has_overflow and "cloud" not in held and not spent:
        expected = "cloud"
    else:
        expected = next((names[i] for i in range(wanted - 1, 0, -1) if names[i] not in held), names[0])
    assert decision.tier == expected
    assert decision.model_group == raw["tiers"][expected]["model_group"]
    if expected != "cloud":
        assert names.index(decision.tier) <= wanted  # never above what the score reaches
    if expected != names[wanted]:
        assert decision.wanted == names[wanted]
        assert decision.reason.value == "smart_unhealthy"  # why the wanted tier was held off
        if len(names) + has_overflow > 2:
            assert names[wanted] in decision.evidence["passed_over"]


def test_evidence_lists_every_rung_passed_over_and_why() -> None:
    raw = ladder_settings([0.3, 0.6, 0.8], overflow=True)
    d = decide(raw, 0.9, held={"t3", "t2", "cloud"})
    assert d.tier == "t1" and d.wanted == "t3" and d.label == "smart_unhealthy"
    assert d.evidence["passed_over"] == {"t3": "smart_unhealthy", "cloud": "smart_unhealthy",
                                         "t2": "smart_unhealthy"}
    assert d.evidence["checks"]["health"].startswith("block")  # the wanted tier's own checks
    assert d.evidence["t1_checks"]["health"] == "pass"


def test_a_spent_budget_sends_the_request_down_the_ladder_and_says_so() -> None:
    raw = ladder_settings([0.5], overflow=True)
    d = decide(raw, 0.9, held={"t1"}, budget_spent=True)
    assert d.tier == "t0"
    assert d.evidence["passed_over"]["cloud"] == "budget_spent"
    assert d.evidence["cloud_checks"]["budget"] == "block: requests_per_hour spent (10 of 10)"
    assert decide(raw, 0.9, held={"t1"}).tier == "cloud"


def test_the_overflow_tier_never_takes_what_a_local_tier_can_serve() -> None:
    raw = ladder_settings([0.5], overflow=True)
    assert decide(raw, 0.9).tier == "t1"
    assert decide(raw, 0.1, held={"t1"}).tier == "t0"  # a simple request never overflows


def test_affinity_keeps_a_conversation_on_the_highest_local_tier_it_reached() -> None:
    raw = ladder_settings([0.3, 0.6], overflow=True)
    d = decide(raw, 0.1, sticky="t2")
    assert (d.tier, d.label) == ("t2", "affinity")
    assert decide(raw, 0.9, sticky="t1").tier == "t2"  # a higher score still climbs
    assert decide(raw, 0.1, sticky="cloud").tier == "t0"  # overflow is not a place to stick to
    store = AffinityStore(rank={"t0": 0, "t1": 1, "t2": 2, "cloud": 3})
    store.record("c", "t2")
    store.record("c", "t0")
    assert store.tier("c") == "t2"  # never moved down
    store.record("c", "gone")  # a tier no longer configured ranks below every other
    assert store.tier("c") == "t2"


def test_overrides_and_rules_name_any_tier() -> None:
    raw = ladder_settings([0.3, 0.6], overflow=False, override={"allowed_users": ["ops"]},
                          rules=[{"name": "legal", "keywords": ["q"], "route": "t1"}])
    meta = RequestMeta(user_id="ops", headers={"x-stratum-tier": "T2"})
    assert (decide(raw, 0.1, meta=meta).tier, decide(raw, 0.1, meta=meta).label) == ("t2", "override")
    assert decide(raw, 0.9).tier == "t1"  # the rule
    bad = RequestMeta(user_id="ops", headers={"x-stratum-tier": "huge"})
    assert "expected one of t0, t1, t2" in decide(raw, 0.1, meta=bad).evidence["override"]


def test_a_python_rule_naming_an_unknown_tier_is_ignored_and_reported() -> None:
    policy = Policy(parse_settings(ladder_settings([0.5])), scorer=FixedScorer(0.1))  # type: ignore[arg-type]
    policy.add_rule(lambda inp: RuleOutcome(tier="gpt-9"), name="typo")
    d = decide({}, 0.1, policy=policy)
    assert d.tier == "t0" and "not one of the tiers" in d.evidence["rule_errors"]["typo"]


def test_a_capacity_rule_holds_off_every_tier_above_the_one_it_names() -> None:
    policy = Policy(parse_settings(ladder_settings([0.3, 0.6])), scorer=FixedScorer(0.9))  # type: ignore[arg-type]
    policy.add_rule(lambda inp: RuleOutcome(tier="t1"), position="capacity", name="cap")
    d = decide({}, 0.9, policy=policy)
    assert (d.tier, d.label, d.wanted) == ("t1", "rule:cap", "t2")


# -- the configuration refuses a ladder that cannot work, naming the key -------------------------


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ({"a": {"model_group": "x"}, "b": {"model_group": "y", "entry_score": 0.5},
          "c": {"model_group": "z", "entry_score": 0.4}},
         "stratum.tiers.c.entry_score: entry scores must increase up the ladder (c 0.4 <= b 0.5)"),
        ({"a": {"model_group": "x"}, "b": {"model_group": "y", "entry_score": 0.5}, "c": {"model_group": "z"}},
         "stratum.tiers.c.entry_score: required when the ladder has more than two local tiers"),
        ({"a": {"model_group": "x"}, "cloud": {"model_group": "h", "overflow": True, "budget": BUDGET},
          "b": {"model_group": "y"}},
         "stratum.tiers.cloud.overflow: the overflow tier must come last"),
        ({"a": {"model_group": "x"}, "b": {"model_group": "y"}, "cloud": {"model_group": "h", "overflow": True}},
         "stratum.tiers.cloud.budget: an overflow tier needs a budget"),
        ({"a": {"model_group": "x"}, "b": {"model_group": "y", "budget": BUDGET}},
         "stratum.tiers.b.budget: only an overflow tier has a budget"),
        ({"a": {"model_group": "x"}, "b": {"model_group": "y"},
          "cloud": {"model_group": "h", "overflow": True, "budget": BUDGET, "entry_score": 0.9}},
         "stratum.tiers.cloud.entry_score: an overflow tier takes no traffic by score"),
        ({"a": {"model_group": "x"}, "cloud": {"model_group": "h", "overflow": True, "budget": BUDGET}},
         "stratum.tiers: the ladder needs at least two local (not overflow) tiers, got 1"),
        ({"a": {"model_group": "x"}, "b": {"model_group": "x"}},
         "stratum.tiers.b.model_group: 'x' is already the model group of tier 'a'"),
        ({"a": {"model_group": "x", "entry_score": 0.2}, "b": {"model_group": "y"}},
         "stratum.tiers.a.entry_score: the first tier takes every score below the next tier's"),
        ({"a b": {"model_group": "x"}, "b": {"model_group": "y"}}, "tier name 'a b' must be 1-40 letters"),
        ({"a": {"model_group": "x"}, "b": {"model_group": "y"},
          "cloud": {"model_group": "h", "overflow": True, "budget": {}}},
         "stratum.tiers.cloud.budget: a budget needs at least one of requests_per_hour"),
    ],
)
def test_a_ladder_that_cannot_work_is_refused_naming_the_key(tiers: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings({"tiers": tiers})
    assert message in str(info.value)


def test_a_rule_or_fallback_naming_no_tier_is_refused() -> None:
    with pytest.raises(SettingsError, match=r"stratum.rules.0.route: 'big' is not a tier \(tiers: fast, smart\)"):
        parse_settings({"rules": [{"name": "r", "keywords": ["x"], "route": "big"}]})
    with pytest.raises(SettingsError, match=r"stratum.fallback_tier: 'big' is not a tier"):
        parse_settings({"fallback_tier": "big"})


# -- the budget ------------------------------------------------------------------------------------



def test_the_request_budget_counts_a_rolling_hour_and_day() -> None:
    clock = FakeClock(0.0)
    tracker = BudgetTracker(BudgetSettings(requests_per_hour=1), clock)
    tracker.configure(BudgetSettings(requests_per_hour=3, requests_per_day=5))  # a reload
    for _ in range(3):
        assert tracker.left().spent is None
        tracker.charge_request()
    assert tracker.left().spent == "requests_per_hour spent (3 of 3)"
    clock.now += 3601  # the hour has rolled on, the day has not
    left = tracker.left()
    assert (left.requests_hour, left.requests_day, left.spent) == (3, 2, None)
    tracker.charge_request()
    tracker.charge_request()
    assert tracker.left().spent == "requests_per_day spent (5 of 5)"
    clock.now += 86_401
    assert tracker.left() == BudgetLeft(3, 5, None, None, None)


def test_spend_comes_from_the_calls_cost_and_junk_costs_nothing() -> None:
    clock = FakeClock(0.0)
    tracker = BudgetTracker(BudgetSettings(spend_per_day_usd=0.01), clock)
    for junk in (-1.0, float("nan"), float("inf"), 0.0):
        tracker.charge_spend(junk)
    assert tracker.left().spend_day_usd == pytest.approx(0.01)
    tracker.charge_spend(0.004)
    tracker.charge_spend(0.007)
    assert tracker.left().spent == "spend_per_day_usd spent (0.0110 of 0.0100)"


def test_the_engine_charges_the_overflow_tier_and_goes_down_the_ladder_once_spent() -> None:
    raw = ladder_settings([0.5], overflow=True)
    raw["tiers"]["cloud"]["budget"] = {"requests_per_hour": 2, "spend_per_day_usd": 1.0}
    raw["latency"] = {"failure_threshold": 1, "cooldown_s": 600}
    settings = parse_settings(raw)
    engine = RouterEngine(settings, Signals(settings),
                          policy=Policy(settings, scorer=FixedScorer(0.9)))  # type: ignore[arg-type]
    # The wanted tier t1 fails once and is unhealthy for 10 minutes.
    engine.observe({"standard_logging_object": {"model_group": "g1"}, "exception": ConnectionRefusedError(111, "refused")},
                   0.0, 1.0, ok=False)
    served = []
    for i in range(3):
        body = {"model": "gemma4-auto", "messages": [{"role": "user", "content": "hard"}], "litellm_call_id": f"c{i}"}
        decision = engine.route(body)
        served.append(decision.tier)
        engine.observe({"litellm_call_id": f"c{i}", "response_cost": 0.25,
                        "standard_logging_object": {"model_group": body["model"]}}, 0.0, 0.5, ok=True)
    assert served == ["cloud", "cloud", "t0"]
    left = engine.stats().budgets["cloud"]
    assert (left.requests_hour, left.spend_day_usd) == (0, 0.5)
    engine.close()
