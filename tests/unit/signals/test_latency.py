"""Latency EMAs, in-flight counts and failure streaks per tier."""

from __future__ import annotations

from hypothesis import given, strategies as st

from stratum_litellm.signals.latency import LatencyTracker
from waiting import FakeClock



def test_ema_moves_by_alpha_and_ttft_only_from_streams() -> None:
    t = LatencyTracker(alpha=0.5)
    t.begin("a", "smart")
    t.observe_success("a", "smart", ttft_ms=None, total_ms=1000.0)
    s = t.tier("smart")
    assert s.total_ema_ms == 1000.0 and s.ttft_ema_ms is None
    # With no stream seen yet the SLA falls back to total time.
    assert s.measure_ms("ttft") == 1000.0
    t.observe_success("b", "smart", ttft_ms=100.0, total_ms=2000.0)
    s = t.tier("smart")
    assert s.total_ema_ms == 1500.0 and s.ttft_ema_ms == 100.0
    assert s.measure_ms("ttft") == 100.0 and s.measure_ms("total") == 1500.0
    assert t.tier("fast").samples == 0


def test_seed_is_the_starting_value() -> None:
    t = LatencyTracker(alpha=0.2, seed_ms=500.0)
    assert t.tier("fast").ttft_ema_ms == 500.0
    t.observe_success(None, "fast", ttft_ms=1500.0, total_ms=1500.0)
    assert t.tier("fast").ttft_ema_ms == 700.0


def test_a_new_seed_replaces_only_averages_nothing_has_measured() -> None:
    t = LatencyTracker(alpha=0.5, seed_ms=None)
    t.observe_success(None, "smart", ttft_ms=None, total_ms=1000.0)  # not streamed: no ttft
    t.observe_failure(None, "fast", total_ms=4000.0)  # a slow failure is measured too
    t.seed(600.0)
    smart, fast = t.tier("smart"), t.tier("fast")
    assert smart.total_ema_ms == 1000.0 and smart.ttft_ema_ms == 600.0
    assert fast.total_ema_ms == 4000.0 and fast.ttft_ema_ms == 600.0
    t.observe_success(None, "smart", ttft_ms=200.0, total_ms=1000.0)
    assert t.tier("smart").ttft_ema_ms == 400.0  # the new seed is the starting value
    t.seed(None)
    assert t.tier("smart").ttft_ema_ms == 400.0 and t.tier("fast").ttft_ema_ms is None


def test_in_flight_counts_until_the_callback_and_release_is_by_call_id() -> None:
    t = LatencyTracker()
    t.begin("a", "smart")
    t.begin("b", "smart")
    t.begin("c", "fast")
    assert t.in_flight("smart") == 2 and t.in_flight("fast") == 1
    # A fallback served "a" on the fast tier: the smart count is still released.
    t.observe_success("a", "fast", ttft_ms=None, total_ms=10.0)
    assert t.in_flight("smart") == 1
    t.observe_failure("b", "smart", total_ms=5.0)
    assert t.in_flight("smart") == 0
    # Unknown ids and repeated callbacks change nothing.
    t.observe_success("a", "fast", ttft_ms=None, total_ms=10.0)
    assert t.in_flight("fast") == 1


def test_lost_callbacks_expire() -> None:
    clock = FakeClock()
    t = LatencyTracker(in_flight_timeout_s=60.0, clock=clock)
    t.begin("lost", "smart")
    clock.now += 61.0
    t.begin("next", "fast")  # sweeps on the way
    assert t.in_flight("smart") == 0 and t.in_flight("fast") == 1


def test_a_fast_failure_never_makes_a_tier_look_faster_and_streaks_mark_unhealthy() -> None:
    clock = FakeClock()
    t = LatencyTracker(alpha=0.5, failure_threshold=2, cooldown_s=30.0, clock=clock)
    t.observe_success(None, "smart", ttft_ms=None, total_ms=1000.0)
    t.observe_failure(None, "smart", total_ms=5.0)  # connection refused
    assert t.tier("smart").total_ema_ms == 1000.0
    assert t.tier("smart").unhealthy_until == 0.0
    t.observe_failure(None, "smart", total_ms=30000.0)  # a timeout does count
    s = t.tier("smart")
    assert s.total_ema_ms == 15500.0
    assert s.unhealthy_until == clock.now + 30.0
    t.observe_success(None, "smart", ttft_ms=None, total_ms=100.0)
    assert t.tier("smart").unhealthy_until == 0.0 and t.tier("smart").consecutive_failures == 0


def test_a_probe_replaces_the_stale_average() -> None:
    t = LatencyTracker(alpha=0.1)
    for _ in range(5):
        t.observe_success(None, "smart", ttft_ms=5000.0, total_ms=5000.0)
    t.begin("probe", "smart", probe=True)
    assert t.tier("smart").probe_in_flight
    t.observe_success("probe", "smart", ttft_ms=200.0, total_ms=400.0)
    s = t.tier("smart")
    assert not s.probe_in_flight
    assert s.ttft_ema_ms == 200.0 and s.total_ema_ms == 400.0


@given(st.lists(st.tuples(st.sampled_from(["begin", "ok", "fail"]), st.integers(0, 5), st.sampled_from(["fast", "smart"])), max_size=60))
def test_in_flight_never_negative_and_equals_open_ids(ops: list[tuple[str, int, str]]) -> None:
    t = LatencyTracker()
    open_ids: dict[str, str] = {}
    for op, n, tier in ops:
        call_id = f"id{n}"
        if op == "begin":
            t.begin(call_id, tier)  # type: ignore[arg-type]
            open_ids[call_id] = tier
        elif op == "ok":
            t.observe_success(call_id, tier, ttft_ms=1.0, total_ms=2.0)  # type: ignore[arg-type]
            open_ids.pop(call_id, None)
        else:
            t.observe_failure(call_id, tier, total_ms=2.0)  # type: ignore[arg-type]
            open_ids.pop(call_id, None)
        for name in ("fast", "smart"):
            assert t.in_flight(name) == sum(1 for v in open_ids.values() if v == name)  # type: ignore[arg-type]


def test_a_cut_short_stream_counts_its_first_token_only_and_a_release_counts_nothing() -> None:
    t = LatencyTracker(alpha=0.5, failure_threshold=1)
    t.begin("a", "smart")
    t.observe_success("a", "smart", ttft_ms=300.0, total_ms=None)  # the client closed it early
    s = t.tier("smart")
    assert (s.ttft_ema_ms, s.total_ema_ms, s.samples, s.in_flight) == (300.0, None, 1, 0)
    t.begin("b", "smart")
    t.release("b")  # failed for the client's reasons
    s = t.tier("smart")
    assert (s.in_flight, s.consecutive_failures, s.samples, s.unhealthy_until) == (0, 0, 1, 0.0)


def test_a_failure_is_the_tier_the_call_was_sent_to() -> None:
    # LiteLLM names the fallback's group in the failure of a stream that timed out.
    t = LatencyTracker(alpha=0.5, failure_threshold=1)
    t.begin("a", "smart")
    t.observe_failure("a", "fast", total_ms=60_000.0)
    assert t.tier("smart").consecutive_failures == 1 and t.tier("fast").consecutive_failures == 0
