"""Conversation affinity: up, never down, bounded, no text stored."""

from __future__ import annotations

from hypothesis import given, strategies as st

from conftest import SIMPLE_PROMPT
from stratum_litellm.routing.affinity import AffinityStore, conversation_key
from stratum_litellm.gateway.engine import RouterEngine
from stratum_litellm.config import parse_settings
from waiting import FakeClock



def turns(*contents: str, system: str | None = "be helpful") -> list[dict]:
    messages = [{"role": "system", "content": system}] if system else []
    for i, content in enumerate(contents):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return messages


def test_every_turn_of_a_conversation_has_the_same_key_and_others_differ() -> None:
    first = conversation_key({"messages": turns("question one")})
    later = conversation_key({"messages": turns("question one", "answer", "follow-up")})
    assert first == later and first is not None
    assert conversation_key({"messages": turns("question two")}) != first
    assert conversation_key({"messages": turns("question one"), "user": "alice"}) != first
    assert conversation_key({"messages": turns("x"), "metadata": {"session_id": "s-1"}}) == "session:s-1"
    assert conversation_key({"messages": []}) is None
    # No text is kept: the key is a digest.
    assert "question" not in first


def test_store_never_downgrades_expires_and_is_bounded() -> None:
    clock = FakeClock(0.0)
    store = AffinityStore(ttl_s=10, max_conversations=3, clock=clock)
    store.record("a", "smart")
    store.record("a", "fast")
    assert store.tier("a") == "smart"
    clock.now = 11
    assert store.tier("a") is None
    for key in "bcde":
        store.record(key, "fast")
    assert len(store) == 3 and store.tier("b") is None and store.tier("e") == "fast"


def test_a_conversation_that_reached_smart_stays_there_for_simple_turns() -> None:
    # A rule sends the first turn to the smart tier; the follow-up alone would be simple.
    raw = {"rules": [{"name": "contracts", "keywords": ["contract"], "route": "smart"}]}
    engine = RouterEngine(parse_settings(raw))
    first = {"model": "gemma4-auto", "messages": turns("Please check this contract.")}
    assert engine.route(first).label == "rule:contracts"
    def follow_up() -> dict:  # a fresh body each time: routing rewrites its model
        return {"model": "gemma4-auto", "messages": turns("Please check this contract.", "Done.", SIMPLE_PROMPT)}

    assert RouterEngine(parse_settings(raw)).route(follow_up()).tier == "fast"
    d = engine.route(follow_up())
    assert (d.tier, d.label) == ("smart", "affinity")
    # A fresh conversation with the same simple turn goes fast.
    assert engine.route({"model": "gemma4-auto", "messages": turns(SIMPLE_PROMPT)}).tier == "fast"
    # Turned off, the follow-up is judged alone.
    off = RouterEngine(parse_settings({**raw, "affinity": {"enabled": False}}))
    off.route({"model": "gemma4-auto", "messages": turns("Please check this contract.")})
    assert off.route(follow_up()).tier == "fast"


@given(st.lists(st.sampled_from(["fast", "smart"]), min_size=1, max_size=20))
def test_once_smart_always_smart_within_the_ttl(tiers: list[str]) -> None:
    store = AffinityStore(ttl_s=100, clock=FakeClock(0.0))
    for tier in tiers:
        store.record("k", tier)  # type: ignore[arg-type]
    assert store.tier("k") == ("smart" if "smart" in tiers else "fast")
