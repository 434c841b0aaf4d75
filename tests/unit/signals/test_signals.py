"""Signals: snapshots safe from any thread, reloads all or nothing, a reloaded seed applied."""

from __future__ import annotations

import sys
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from process import free_port
from stratum_litellm.config import StratumSettings, parse_settings
from stratum_litellm.signals.backends import BackendPoller
from stratum_litellm.signals.gpu import GpuReading, GpuSnapshot
from stratum_litellm.signals.snapshot import Signals
from stratum_litellm.signals.status import Status

GIB = 1024**3


def reading(util: float) -> GpuReading:
    return GpuReading(0, "test", 16 * GIB, 8 * GIB, 8 * GIB, util, 0.0)


class SteppedGpu:
    """A GPU monitor whose first snapshot (95 % busy) is held until released, while later
    ones (70 %, then 80 %) come back at once: two callers race on the circuit."""

    def __init__(self) -> None:
        self.calls = 0
        self.first_entered = threading.Event()
        self.release_first = threading.Event()
        self._lock = threading.Lock()

    def snapshot(self) -> GpuSnapshot:
        with self._lock:
            self.calls += 1
            call = self.calls
        if call == 1:
            self.first_entered.set()
            self.release_first.wait(10)
        util = {1: 95.0, 2: 70.0}.get(call, 80.0)
        return GpuSnapshot({0: reading(util)}, taken_at=float(call), status=Status.OK, error=None)

    def stop(self) -> None:
        pass


def test_concurrent_snapshots_feed_the_circuit_in_the_order_read() -> None:
    # trip 90, reset 75: 95 then 70 must leave the circuit closed, whoever returns first.
    gpu = SteppedGpu()
    signals = Signals(parse_settings({}), gpu_monitor=gpu)  # type: ignore[arg-type]
    results: dict[str, bool | None] = {}

    def take(name: str) -> None:
        results[name] = signals.snapshot()["smart"].gpu_busy

    first = threading.Thread(target=take, args=("first",))  # a request reads 95 % ...
    first.start()
    assert gpu.first_entered.wait(10)
    second = threading.Thread(target=take, args=("second",))  # ... the scrape thread reads 70 %
    second.start()
    second.join(0.3)  # without ordering, the newer reading lands first
    gpu.release_first.set()
    first.join(10)
    second.join(10)

    assert results == {"first": True, "second": False}
    # 80 % is inside the band: the circuit keeps the state the newest reading left.
    assert signals.snapshot()["smart"].gpu_busy is False


class StandInNvml:
    """Just enough of pynvml for GpuMonitor: one GPU, 70 % busy."""

    def nvmlInit(self) -> None:
        pass

    def nvmlShutdown(self) -> None:
        pass

    def nvmlDeviceGetCount(self) -> int:
        return 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "stand-in"

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(total=16 * GIB, free=8 * GIB, used=8 * GIB)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=70, memory=0)


def settings(trip: float, reset: float, poll_ms: float, port: int, alpha: float, seed: float | None) -> StratumSettings:
    return parse_settings({
        "tiers": {
            "fast": {"model_group": "gemma4-fast"},
            "smart": {"model_group": "gemma4-smart", "backend": {"kind": "vllm", "url": f"http://127.0.0.1:{port}"}},
        },
        "gpu": {"poll_interval_ms": poll_ms, "utilisation_trip_pct": trip, "utilisation_reset_pct": reset},
        "latency": {"ema_alpha": alpha, "seed_ms": seed},
    })


def poller_threads() -> dict[str, int]:
    names = [t.name for t in threading.enumerate()]
    return {name: names.count(name) for name in ("stratum-nvml", "stratum-backends")}


def refuse_to_build(self: BackendPoller, *args: Any, **kwargs: Any) -> None:
    raise ValueError("cannot build the backend poller")


def refuse_to_start(self: BackendPoller) -> None:
    raise RuntimeError("can't start new thread")


@pytest.mark.parametrize(("method", "failure"), [("__init__", refuse_to_build), ("start", refuse_to_start)])
def test_a_reload_that_fails_half_way_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, method: str, failure: Any
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", StandInNvml())
    old_port, new_port = free_port(), free_port()
    signals = Signals.polling(settings(90.0, 75.0, 100.0, old_port, alpha=0.5, seed=None))
    try:
        signals.start()
        monitor, poller = signals.gpu_monitor, signals.backend_poller
        assert monitor is not None and poller is not None
        threads = poller_threads()
        assert signals.snapshot()["smart"].gpu_busy is False  # 70 % < trip 90

        monkeypatch.setattr(BackendPoller, method, failure)
        with pytest.raises((ValueError, RuntimeError)):
            # Every part changes: circuit thresholds, NVML poller, backend poller, EMA, seed.
            signals.reconfigure(settings(60.0, 50.0, 200.0, new_port, alpha=1.0, seed=500.0))
        monkeypatch.undo()

        assert signals.gpu_monitor is monitor and monitor.running
        assert signals.backend_poller is poller and poller.running
        assert poller.targets["smart"].url == f"http://127.0.0.1:{old_port}"
        assert poller_threads() == threads  # the new NVML poller started for the reload is stopped again
        assert signals.snapshot()["smart"].gpu_busy is False  # the old thresholds still apply
        latency = signals.latency
        assert latency.tier("fast").total_ema_ms is None  # the new seed did not land
        latency.observe_success(None, "smart", ttft_ms=None, total_ms=100.0)
        latency.observe_success(None, "smart", ttft_ms=None, total_ms=200.0)
        assert latency.tier("smart").total_ema_ms == 150.0  # the old alpha 0.5, not 1.0

        monkeypatch.setitem(sys.modules, "pynvml", StandInNvml())
        signals.reconfigure(settings(60.0, 50.0, 200.0, new_port, alpha=1.0, seed=500.0))  # now it takes
        assert signals.gpu_monitor is not monitor and not monitor.running
        assert signals.backend_poller is not poller and not poller.running
        assert poller_threads() == threads  # replaced one for one
        assert signals.snapshot()["smart"].gpu_busy is True  # 70 % >= the new trip 60
    finally:
        signals.close()


def test_a_reloaded_seed_reaches_only_what_nothing_has_measured() -> None:
    signals = Signals(parse_settings({"latency": {"seed_ms": 800.0}}))
    signals.latency.observe_success(None, "smart", ttft_ms=None, total_ms=2000.0)  # not streamed

    signals.reconfigure(parse_settings({"latency": {"seed_ms": 300.0}}))

    fast, smart = signals.latency.tier("fast"), signals.latency.tier("smart")
    assert (fast.ttft_ema_ms, fast.total_ema_ms) == (300.0, 300.0)  # no sample yet: the new seed
    assert smart.total_ema_ms == pytest.approx(1040.0)  # measured (800 moved 20 % toward 2000): kept
    assert smart.ttft_ema_ms == 300.0  # no stream seen yet, so still a seed: the new one
