"""The ``fit`` check: a request goes only to a tier that can take it (context, images,
audio, tools), up or down the ladder, and an unknown limit never changes a decision."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from stratum_litellm.config import parse_settings
from stratum_litellm.routing.decision import Reason
from stratum_litellm.routing.needs import Needs
from stratum_litellm.routing.policy import Policy
from stratum_litellm.routing.rules import RequestMeta
from stratum_litellm.scoring.view import RequestView
from stratum_litellm.signals.limits import TierLimits
from stratum_litellm.signals.snapshot import SignalSnapshot, Signals

LONG_DOCUMENT = "The parties agree that the supplier shall deliver the goods described below. " * 400  # ~8k tokens
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}


def snapshot(settings: Any, limits: dict[str, TierLimits]) -> SignalSnapshot:
    snap = Signals(settings).snapshot()
    return replace(snap, tiers={tier: replace(rung, limits=limits.get(tier, rung.limits))
                                for tier, rung in snap.tiers.items()})


def decide(policy: Policy, body: dict[str, Any], limits: dict[str, TierLimits], model: str = "gemma4-auto",
           meta: RequestMeta | None = None, sticky: str | None = None) -> Any:
    view = RequestView.from_request(body)
    decision = policy.decide(view, model, snapshot(policy.settings, limits), meta, sticky_tier=sticky)
    assert decision is not None
    return decision


def chat(content: Any, **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **extra}


TWO = parse_settings({"gpu": {"enabled": False}})
SHORT_SMART = {"fast": TierLimits(context_tokens=32_768, sources={"context_tokens": "vLLM /v1/models"}),
               "smart": TierLimits(context_tokens=2_048, sources={"context_tokens": "llama-server /props"})}


def test_a_long_hard_request_goes_where_its_context_holds_and_a_short_one_still_goes_smart() -> None:
    policy = Policy(TWO)
    long_hard = decide(policy, chat(COMPLEX_PROMPT + "\n\n" + LONG_DOCUMENT), SHORT_SMART)
    assert (long_hard.tier, long_hard.reason, long_hard.wanted) == ("fast", Reason.CONTEXT_FIT, "smart")
    assert long_hard.evidence["checks"]["fit"].startswith("block: about ")
    assert "2048 (llama-server /props)" in long_hard.evidence["checks"]["fit"]
    assert long_hard.evidence["input_tokens"] > 2_048
    short_hard = decide(policy, chat(COMPLEX_PROMPT), SHORT_SMART)
    assert (short_hard.tier, short_hard.reason) == ("smart", Reason.COMPLEX)
    assert short_hard.evidence["checks"]["fit"] == "pass"


def test_the_answer_asked_for_counts_against_the_context() -> None:
    policy = Policy(TWO)
    assert decide(policy, chat(COMPLEX_PROMPT, max_tokens=256), SHORT_SMART).tier == "smart"
    held = decide(policy, chat(COMPLEX_PROMPT, max_tokens=4_000), SHORT_SMART)
    assert (held.tier, held.reason) == ("fast", Reason.CONTEXT_FIT)
    assert "+ 4000 asked tokens" in held.evidence["checks"]["fit"]


def test_up_the_ladder_when_the_first_tier_cannot_take_it() -> None:
    policy = Policy(TWO)
    limits = {"fast": TierLimits(context_tokens=1_024), "smart": TierLimits(context_tokens=131_072)}
    simple_long = decide(policy, chat("hi, summarise please:\n" + LONG_DOCUMENT), limits)
    assert (simple_long.tier, simple_long.reason, simple_long.wanted) == ("smart", Reason.CONTEXT_FIT, "fast")
    assert simple_long.evidence["fast_checks"]["fit"].startswith("block")
    image = decide(policy, chat([{"type": "text", "text": "what is this?"}, IMAGE]),
                   {"fast": TierLimits(vision=False), "smart": TierLimits(vision=True)})
    assert (image.tier, image.reason) == ("smart", Reason.MODALITY_FIT)
    tools = decide(policy, chat(SIMPLE_PROMPT, tools=[{"type": "function", "function": {"name": "get_weather"}}]),
                   {"fast": TierLimits(tools=False), "smart": TierLimits(tools=True)})
    assert (tools.tier, tools.reason) == ("smart", Reason.TOOLS_FIT)
    audio = decide(policy, chat([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]),
                   {"fast": TierLimits(audio=False)})
    assert (audio.tier, audio.reason) == ("smart", Reason.MODALITY_FIT)  # smart's audio unknown: never blocks


def test_a_request_no_tier_takes_goes_to_the_one_with_most_room_and_says_so() -> None:
    policy = Policy(TWO)
    limits = {"fast": TierLimits(context_tokens=1_024), "smart": TierLimits(context_tokens=4_096)}
    decision = decide(policy, chat(LONG_DOCUMENT), limits)
    assert (decision.tier, decision.reason) == ("smart", Reason.NO_TIER_FITS)
    assert decision.evidence["no_tier_fits"] == "context_fit"
    hard = decide(policy, chat(COMPLEX_PROMPT + LONG_DOCUMENT),
                  {"fast": TierLimits(context_tokens=8_000), "smart": TierLimits(context_tokens=1_000)})
    assert (hard.tier, hard.reason) == ("fast", Reason.NO_TIER_FITS)


def test_a_tier_that_fits_but_is_full_takes_it_rather_than_one_that_cannot() -> None:
    settings = parse_settings({"gpu": {"enabled": False}, "tiers": {
        "fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart", "max_in_flight": 1}}})
    policy = Policy(settings)
    signals = Signals(settings)
    signals.latency.begin("busy", "smart")
    snap = signals.snapshot()
    snap = replace(snap, tiers={"fast": replace(snap["fast"], limits=TierLimits(context_tokens=1_024)),
                                "smart": replace(snap["smart"], limits=TierLimits(context_tokens=65_536))})
    decision = policy.decide(RequestView.from_request(chat(COMPLEX_PROMPT + LONG_DOCUMENT)), "gemma4-auto", snap)
    assert decision is not None and decision.tier == "smart" and decision.reason is Reason.CONTEXT_FIT
    assert decision.evidence["held"] == "smart_saturated"


def test_the_overflow_tier_stands_in_when_it_fits_and_a_conversation_goes_where_it_fits() -> None:
    ladder = parse_settings({"gpu": {"enabled": False}, "tiers": {
        "fast": {"model_group": "gemma4-fast"}, "smart": {"model_group": "gemma4-smart"},
        "cloud": {"model_group": "cloud", "overflow": True, "budget": {"requests_per_hour": 10}}}})
    policy = Policy(ladder)
    limits = {"fast": TierLimits(context_tokens=2_048), "smart": TierLimits(context_tokens=2_048),
              "cloud": TierLimits(context_tokens=200_000)}
    decision = decide(policy, chat(COMPLEX_PROMPT + LONG_DOCUMENT), limits)
    assert (decision.tier, decision.reason, decision.wanted) == ("cloud", Reason.CONTEXT_FIT, "smart")
    sticky = decide(Policy(TWO), chat(LONG_DOCUMENT), SHORT_SMART, sticky="smart")
    assert (sticky.tier, sticky.reason) == ("fast", Reason.CONTEXT_FIT)


def test_a_tier_the_client_picks_is_kept_and_its_misfit_reported() -> None:
    settings = parse_settings({"gpu": {"enabled": False}, "override": {"allowed_users": ["ops"]}})
    policy = Policy(settings)
    forced = decide(policy, chat(LONG_DOCUMENT), SHORT_SMART, model="gemma4-smart")
    assert (forced.tier, forced.reason) == ("smart", Reason.FORCED)
    assert forced.evidence["fit"].startswith("smart: context_fit: block: about ")
    override = decide(policy, chat(LONG_DOCUMENT), SHORT_SMART,
                      meta=RequestMeta(user_id="ops", headers={"x-stratum-tier": "smart"}))
    assert (override.tier, override.reason) == ("smart", Reason.OVERRIDE) and "fit" in override.evidence
    fine = decide(policy, chat(SIMPLE_PROMPT), SHORT_SMART, model="gemma4-smart")
    assert "fit" not in fine.evidence


def test_with_fit_forced_move_a_tier_the_client_picked_that_cannot_take_it_is_left_for_one_that_can() -> None:
    settings = parse_settings({"gpu": {"enabled": False}, "fit": {"forced": "move"},
                               "override": {"allowed_users": ["ops"]}})
    policy = Policy(settings)
    forced = decide(policy, chat(LONG_DOCUMENT), SHORT_SMART, model="gemma4-smart")
    assert (forced.tier, forced.model_group, forced.reason, forced.wanted) == (
        "fast", "gemma4-fast", Reason.CONTEXT_FIT, "smart")
    override = decide(policy, chat(LONG_DOCUMENT), SHORT_SMART,
                      meta=RequestMeta(user_id="ops", headers={"x-stratum-tier": "smart"}))
    assert (override.tier, override.reason) == ("fast", Reason.CONTEXT_FIT)
    nowhere = decide(policy, chat(LONG_DOCUMENT), {"fast": TierLimits(context_tokens=512),
                                                   "smart": TierLimits(context_tokens=512)}, model="gemma4-smart")
    assert (nowhere.tier, nowhere.reason) == ("smart", Reason.FORCED)  # none can: kept where asked


def test_unknown_limits_leave_no_trace() -> None:
    decision = decide(Policy(TWO), chat(COMPLEX_PROMPT + LONG_DOCUMENT), {})
    assert (decision.tier, decision.reason) == ("smart", Reason.COMPLEX)
    assert "fit" not in decision.evidence["checks"] and "input_tokens" not in decision.evidence


# --------------------------------------------------------------------------- properties

LADDERS = [TWO, parse_settings({"gpu": {"enabled": False}, "tiers": {
    "t0": {"model_group": "g0"}, "t1": {"model_group": "g1", "entry_score": 0.4},
    "t2": {"model_group": "g2", "entry_score": 0.7}}})]

limits_strategy = st.builds(
    TierLimits,
    context_tokens=st.none() | st.integers(min_value=64, max_value=200_000),
    input_tokens=st.none() | st.integers(min_value=64, max_value=200_000),
    vision=st.none() | st.booleans(), audio=st.none() | st.booleans(), tools=st.none() | st.booleans())


def fits(limits: TierLimits, needs: Needs) -> bool:
    """An oracle of the rule, written apart from the check."""
    if needs.tools and limits.tools is False or needs.vision and limits.vision is False \
            or needs.audio and limits.audio is False:
        return False
    if limits.input_tokens is not None and needs.input_tokens > limits.input_tokens:
        return False
    return limits.context_tokens is None or needs.input_tokens + needs.output_tokens <= limits.context_tokens


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    words = draw(st.integers(min_value=0, max_value=30_000))
    parts: list[Any] = [{"type": "text", "text": (COMPLEX_PROMPT if draw(st.booleans()) else "hello ") + "word " * words}]
    if draw(st.booleans()):
        parts.append(IMAGE)
    if draw(st.booleans()):
        parts.append({"type": "input_audio", "input_audio": {"data": "", "format": "wav"}})
    body: dict[str, Any] = {"messages": [{"role": "user", "content": parts}]}
    if draw(st.booleans()):
        body["tools"] = [{"type": "function", "function": {"name": "lookup"}}]
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.integers(min_value=1, max_value=8_000))
    return body


@hypothesis_settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LADDERS), st.data(), requests())
def test_the_chosen_tier_fits_whenever_any_tier_fits(settings: Any, data: st.DataObject, body: dict[str, Any]) -> None:
    tiers = list(settings.tiers)
    limits = {tier: data.draw(limits_strategy) for tier in tiers}
    policy = Policy(settings)
    decision = decide(policy, body, limits)
    needs = Needs(RequestView.from_request(body))
    if any(fits(limits[tier], needs) for tier in tiers):
        assert fits(limits[decision.tier], needs), (decision.tier, decision.reason, decision.evidence)
        assert decision.reason is not Reason.NO_TIER_FITS
    else:
        assert decision.reason is Reason.NO_TIER_FITS


@hypothesis_settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(LADDERS), requests())
def test_unknown_limits_never_change_a_decision(settings: Any, body: dict[str, Any]) -> None:
    policy = Policy(settings)
    unknown = decide(policy, body, {})
    generous = decide(policy, body, {tier: TierLimits(context_tokens=10_000_000, input_tokens=10_000_000, vision=True,
                                                      audio=True, tools=True) for tier in settings.tiers})
    partly = decide(policy, body, {tier: TierLimits(vision=True) for tier in settings.tiers})
    assert (unknown.tier, unknown.reason) == (generous.tier, generous.reason) == (partly.tier, partly.reason)
