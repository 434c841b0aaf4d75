"""The GPU utilisation circuit: opens at trip, closes at reset, remembers through unknowns."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from stratum_litellm.signals.circuit import UtilisationCircuit


def test_circuit_hysteresis_example() -> None:
    circuit = UtilisationCircuit(trip_pct=90.0, reset_pct=75.0)
    outputs = [circuit.update(u) for u in (50, 89.9, 90, 85, 76, None, 80, 75, 80, 89, 95)]
    assert outputs == [False, False, True, True, True, None, True, False, False, False, True]
    assert circuit.is_open


def test_circuit_unknown_input_keeps_state() -> None:
    circuit = UtilisationCircuit()
    assert circuit.update(None) is None
    assert circuit.update(float("nan")) is None
    assert circuit.update(95) is True
    assert circuit.update(None) is None
    assert circuit.update(80) is True  # still in the band: remembered open state holds


utilisations = st.one_of(st.none(), st.floats(min_value=0.0, max_value=100.0, allow_nan=False))


@given(
    thresholds=st.tuples(st.floats(0.0, 100.0), st.floats(0.0, 100.0)).filter(lambda t: t[1] < t[0]),
    sequence=st.lists(utilisations, max_size=200),
)
def test_circuit_changes_only_at_the_thresholds(thresholds: tuple[float, float], sequence: list[float | None]) -> None:
    trip, reset = thresholds
    circuit = UtilisationCircuit(trip_pct=trip, reset_pct=reset)
    state = False  # a new circuit is closed
    for utilisation in sequence:
        output = circuit.update(utilisation)
        if utilisation is None:
            assert output is None
            continue
        assert output is not None
        if output and not state:
            assert utilisation >= trip  # opens only at or above trip
        if state and not output:
            assert utilisation <= reset  # closes only at or below reset
        # ...and it does change whenever a threshold is crossed (no missed trips).
        if not state and utilisation >= trip:
            assert output
        if state and utilisation <= reset:
            assert not output
        state = output
        assert circuit.is_open == state
