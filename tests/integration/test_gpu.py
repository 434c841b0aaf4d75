"""GpuMonitor against the REAL pynvml, driven by the fake libnvidia-ml.so.1 that nvml_fake builds."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nvml_fake  # tests/support, on sys.path through tests/conftest.py
from waiting import FakeClock, wait_until
import pynvml
import pytest

from stratum_litellm.signals.gpu import GpuMonitor, GpuReading, GpuSnapshot
from stratum_litellm.signals.status import Status

FakeGpu = nvml_fake.FakeGpu
FakeNvml = nvml_fake.FakeNvml

GIB = nvml_fake.GIB
A100 = FakeGpu("NVIDIA A100-SXM4-80GB", 80 * GIB, 60 * GIB, 20 * GIB, util=35, mem_util=12)
L4 = FakeGpu("NVIDIA L4", 24 * GIB, 3 * GIB, 21 * GIB, util=97, mem_util=64)


# -- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="session")
def fake_lib(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = nvml_fake.build(tmp_path_factory.mktemp("nvml_fake"))
    return nvml_fake.load(path)


@pytest.fixture
def fake(fake_lib: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeNvml]:
    """A fresh fake driver with two GPUs and a pynvml that has forgotten earlier scenarios."""
    state = tmp_path / "nvml_state"
    driver = FakeNvml(fake_lib, state)
    driver.set_gpus([A100, L4])
    monkeypatch.setenv(nvml_fake.STATE_ENV, str(state))
    nvml_fake.reset_pynvml()
    driver.reset_counters()
    yield driver
    nvml_fake.reset_pynvml()


@pytest.fixture
def make_monitor(fake: FakeNvml) -> Iterator[Callable[..., GpuMonitor]]:
    """Builds monitors and guarantees their threads are stopped before the next scenario."""
    monitors: list[GpuMonitor] = []

    def factory(**kwargs: Any) -> GpuMonitor:
        kwargs.setdefault("poll_interval_s", 0.002)
        kwargs.setdefault("backoff_initial_s", 0.005)
        kwargs.setdefault("backoff_max_s", 0.05)
        monitor = GpuMonitor(**kwargs)
        monitors.append(monitor)
        return monitor

    yield factory
    fake.release()  # a hung call would otherwise outlive the test
    for monitor in monitors:
        monitor.stop(timeout=5)


def nvml_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "stratum-nvml"]


# -- reading ------------------------------------------------------------------


def test_two_gpus_read_with_their_own_numbers(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    monitor = make_monitor(clock=FakeClock(50.0))
    snap = monitor.poll_once()

    assert snap.status is Status.OK and snap.error is None
    assert snap.taken_at == 50.0
    assert set(snap.readings) == {0, 1}
    assert snap.gpu(0) == GpuReading(0, A100.name, 80 * GIB, 60 * GIB, 20 * GIB, 35.0, 12.0)
    assert snap.gpu(1) == GpuReading(1, L4.name, 24 * GIB, 3 * GIB, 21 * GIB, 97.0, 64.0)
    assert snap.gpu(2) is None
    assert monitor.snapshot() is snap
    # The real pynvml went through the fake C library, once per device per call.
    assert fake.calls("nvmlInitWithFlags") == 1
    assert fake.calls("nvmlDeviceGetMemoryInfo") == 2
    assert fake.calls("nvmlDeviceGetUtilizationRates") == 2
    assert fake.calls("nvmlDeviceGetName") == 2


def test_readings_are_immutable(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    snap = make_monitor().poll_once()
    with pytest.raises(TypeError):
        snap.readings[5] = snap.readings[0]  # type: ignore[index]
    with pytest.raises(AttributeError):
        snap.status = "unknown"  # type: ignore[misc]


def test_values_follow_the_state_file(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    monitor = make_monitor()
    first = monitor.poll_once()
    fake.set_gpus([A100, FakeGpu(L4.name, L4.total, 20 * GIB, 4 * GIB, util=5, mem_util=1)])
    second = monitor.poll_once()

    assert first.gpu(1).memory_free_bytes == 3 * GIB  # type: ignore[union-attr]
    assert second.gpu(1).memory_free_bytes == 20 * GIB  # type: ignore[union-attr]
    assert second.gpu(1).utilization_pct == 5.0  # type: ignore[union-attr]
    assert fake.calls("nvmlInitWithFlags") == 1  # healthy polls do not re-initialise


def test_thread_tracks_changes(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    monitor = make_monitor()
    monitor.start()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    fake.set_gpus([FakeGpu(A100.name, A100.total, GIB, A100.total - GIB, util=99), L4])
    assert wait_until(lambda: getattr(monitor.snapshot().gpu(0), "memory_free_bytes", None) == GIB)


def test_a_third_gpu_is_read_too(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    fake.set_gpus([A100, L4, FakeGpu("NVIDIA H100", 94 * GIB, 90 * GIB, 4 * GIB)])
    snap = make_monitor().poll_once()
    assert sorted(snap.readings) == [0, 1, 2]
    assert snap.gpu(2).name == "NVIDIA H100"  # type: ignore[union-attr]


# -- no library / init failures -------------------------------------------------


def test_missing_library_is_unknown_then_recovers_when_it_appears(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_cdll = pynvml.CDLL

    def cdll_missing(name: str, *args: Any, **kwargs: Any) -> Any:
        # Point pynvml's dlopen at a path that does not exist -> OSError -> LibraryNotFound.
        if name == nvml_fake.LIBRARY_NAME:
            name = "/nonexistent/stratum-test/libnvidia-ml.so.1"
        return real_cdll(name, *args, **kwargs)

    monkeypatch.setattr(pynvml, "CDLL", cdll_missing)
    monitor = make_monitor()
    snap = monitor.poll_once()
    assert snap.status == "unknown"
    assert snap.error == "NVML library not found"
    assert snap.readings == {} and snap.gpu(0) is None
    assert fake.calls("nvmlInitWithFlags") == 0  # the fake was never reached

    monitor.start()
    assert wait_until(lambda: monitor.snapshot().error == "NVML library not found")
    monkeypatch.setattr(pynvml, "CDLL", real_cdll)  # the driver gets installed
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    assert monitor.snapshot().gpu(1).name == L4.name  # type: ignore[union-attr]


def test_real_absence_of_nvml_on_this_machine(tmp_path: Path) -> None:
    # A fresh interpreter that never loaded the fake: the real situation on a GPU-less host.
    script = (
        "import ctypes, json\n"
        "try:\n"
        "    ctypes.CDLL('libnvidia-ml.so.1'); present = True\n"
        "except OSError:\n"
        "    present = False\n"
        "from stratum_litellm.signals.gpu import GpuMonitor\n"
        "m = GpuMonitor()\n"
        "s = m.poll_once()\n"
        "print(json.dumps({'present': present, 'status': s.status, 'error': s.error,\n"
        "                  'gpu0': s.gpu(0) is None, 'delay': m.next_delay_s}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "LD_PRELOAD")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["present"]:
        pytest.skip("a real libnvidia-ml.so.1 is installed on this host")
    assert result == {"present": False, "status": "unknown", "error": "NVML library not found",
                      "gpu0": True, "delay": 0.5}


def test_loaded_fake_without_a_scenario_looks_like_no_library(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake stays loaded for the rest of the session; other tests in this process that
    # expect this GPU-less machine's "no library" must still get it.
    monkeypatch.delenv(nvml_fake.STATE_ENV)
    with pytest.raises(pynvml.NVMLError_LibraryNotFound):
        pynvml.nvmlInit()
    nvml_fake.reset_pynvml()
    assert make_monitor().poll_once().error == "NVML library not found"


def test_init_failure_is_unknown_and_the_thread_recovers(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")
    monitor = make_monitor()
    monitor.start()
    assert wait_until(lambda: fake.calls("nvmlInitWithFlags") >= 3)  # it keeps retrying
    snap = monitor.snapshot()
    assert snap.status == "unknown"
    assert snap.error == "NVML init failed: Driver Not Loaded"
    assert snap.gpu(0) is None

    fake.clear_failures()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    assert monitor.snapshot().gpu(0).name == A100.name  # type: ignore[union-attr]
    assert monitor.running
    assert fake.init_count() == 1  # exactly one live NVML init


def test_driver_error_mid_run_reinitialises_and_recovers(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    monitor = make_monitor()
    monitor.start()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    inits_before = fake.calls("nvmlInitWithFlags")

    fake.fail("nvmlDeviceGetCount_v2", "UNKNOWN")
    assert wait_until(lambda: monitor.snapshot().status == "unknown")
    assert monitor.snapshot().error == "NVML driver error: device count failed: Unknown Error"
    assert monitor.snapshot().readings == {}
    # nvmlShutdown then nvmlInit again: the standard way to recover NVML after a driver error.
    assert wait_until(lambda: fake.calls("nvmlShutdown") >= 1)
    assert wait_until(lambda: fake.calls("nvmlInitWithFlags") > inits_before)

    fake.clear_failures()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    assert monitor.snapshot().error is None
    assert fake.init_count() == 1  # re-inits are balanced by shutdowns
    monitor.stop()
    assert fake.init_count() == 0


def test_driver_error_on_one_device_discards_the_whole_poll(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    monitor = make_monitor()
    assert monitor.poll_once().status == "ok"
    # GPU 0 changes AND the driver fails while reading GPU 1 in the same poll.
    fake.set_gpus([FakeGpu(A100.name, A100.total, 1 * GIB, 79 * GIB), L4])
    fake.fail("nvmlDeviceGetMemoryInfo", "DRIVER_NOT_LOADED", device=1)
    snap = monitor.poll_once()

    assert snap.status == "unknown"
    assert snap.readings == {}  # neither GPU 0's new value nor GPU 1's old one survives
    assert snap.gpu(0) is None
    assert snap.error == "NVML driver error: GPU 1: nvmlDeviceGetMemoryInfo failed: Driver Not Loaded"
    assert fake.calls("nvmlShutdown") == 1

    fake.clear_failures()
    snap = monitor.poll_once()
    assert snap.status == "ok" and snap.gpu(0).memory_free_bytes == 1 * GIB  # type: ignore[union-attr]
    assert fake.calls("nvmlInitWithFlags") == 2


def test_lost_gpu_is_absent_and_the_others_are_fresh(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    monitor = make_monitor()
    assert monitor.poll_once().gpu(1) is not None
    fake.set_gpus([FakeGpu(A100.name, A100.total, 2 * GIB, 78 * GIB, util=88), L4])
    fake.fail("nvmlDeviceGetMemoryInfo", "GPU_IS_LOST", device=1)
    snap = monitor.poll_once()

    assert snap.status == "ok"
    assert snap.error == "GPU 1 lost"
    assert snap.gpu(1) is None and 1 not in snap.readings  # no old GPU 1 numbers carried over
    assert snap.gpu(0).memory_free_bytes == 2 * GIB  # type: ignore[union-attr]
    assert snap.gpu(0).utilization_pct == 88.0  # type: ignore[union-attr]
    assert monitor.next_delay_s == monitor._poll_interval_s  # healthy GPU keeps full rate
    assert fake.calls("nvmlShutdown") == 0  # a device fault is not a driver fault

    fake.clear_failures()
    snap = monitor.poll_once()
    assert snap.error is None and snap.gpu(1).name == L4.name  # type: ignore[union-attr]


def test_gpu_vanishing_from_the_driver_is_reported_lost(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    fake.set_gpus({0: A100}, count=2)  # driver still counts 2, GPU 1 fell off the bus
    snap = make_monitor().poll_once()
    assert snap.status == "ok" and snap.error == "GPU 1 lost"
    assert set(snap.readings) == {0}


def test_every_gpu_lost_is_unknown(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    fake.fail("nvmlDeviceGetUtilizationRates", "GPU_IS_LOST")
    monitor = make_monitor()
    snap = monitor.poll_once()
    assert snap.status == "unknown"
    assert snap.error == "GPU 0 lost; GPU 1 lost"
    assert snap.gpu(0) is None and snap.gpu(1) is None
    assert monitor.next_delay_s == monitor._backoff_initial_s


def test_not_supported_on_one_gpu_names_the_call(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    fake.fail("nvmlDeviceGetUtilizationRates", "NOT_SUPPORTED", device=0)
    snap = make_monitor().poll_once()
    assert snap.status == "ok"
    assert snap.error == "GPU 0: nvmlDeviceGetUtilizationRates failed: Not Supported"
    assert set(snap.readings) == {1}


def test_no_gpus_is_unknown(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    fake.set_gpus([])
    snap = make_monitor().poll_once()
    assert snap.status == "unknown" and snap.error == "NVML reports no GPUs"


# -- back-off -------------------------------------------------------------------


def test_backoff_doubles_to_the_cap_and_resets_after_success(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    monitor = make_monitor(poll_interval_s=0.015, backoff_initial_s=0.5, backoff_max_s=30.0)
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")
    delays = []
    for _ in range(9):
        monitor.poll_once()
        delays.append(monitor.next_delay_s)
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]

    fake.clear_failures()
    monitor.poll_once()
    assert monitor.next_delay_s == 0.015
    fake.fail("nvmlDeviceGetCount_v2", "UNKNOWN")
    monitor.poll_once()
    assert monitor.next_delay_s == 0.5  # a new episode starts from the initial back-off


def test_thread_honours_backoff(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")
    # Back-off far longer than the test: without it, a 1 ms poll would call init hundreds of times.
    monitor = make_monitor(poll_interval_s=0.001, backoff_initial_s=60.0, backoff_max_s=60.0)
    monitor.start()
    assert wait_until(lambda: fake.calls("nvmlInitWithFlags") == 1)
    time.sleep(0.3)
    assert fake.calls("nvmlInitWithFlags") == 1
    started = time.monotonic()
    monitor.stop(timeout=5)  # the back-off wait must not delay shutdown
    assert time.monotonic() - started < 4
    assert not nvml_threads()


def test_thread_polls_at_full_rate_when_healthy(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    monitor = make_monitor(poll_interval_s=0.001, backoff_initial_s=60.0, backoff_max_s=60.0)
    monitor.start()
    # Many polls under one init: the normal interval, not the (60 s) back-off, applies.
    assert wait_until(lambda: fake.calls("nvmlDeviceGetCount_v2") >= 20)
    assert fake.calls("nvmlInitWithFlags") == 1


# -- staleness ------------------------------------------------------------------


def test_snapshot_goes_stale_with_an_injected_clock(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    clock = FakeClock(100.0)
    monitor = make_monitor(stale_after_s=1.0, clock=clock)
    never = monitor.snapshot()
    assert never.status == "unknown" and never.taken_at == 0.0 and never.gpu(0) is None

    monitor.poll_once()
    clock.now = 100.9
    assert monitor.snapshot().status == "ok"
    assert monitor.snapshot().gpu(0) is not None

    clock.now = 101.5
    stale = monitor.snapshot()
    assert stale.status is Status.STALE
    assert stale.gpu(0) is None and stale.gpu(1) is None
    assert stale.taken_at == 100.0
    assert stale.error is not None and "1.50s" in stale.error
    assert stale.is_stale(101.5, 1.0)

    monitor.poll_once()
    assert monitor.snapshot().status == "ok" and monitor.snapshot().taken_at == 101.5


def test_is_stale() -> None:
    snap = GpuSnapshot({}, 10.0, "ok", None)
    assert not snap.is_stale(10.5, 1.0)
    assert not snap.is_stale(11.0, 1.0)
    assert snap.is_stale(11.01, 1.0)
    assert GpuSnapshot({}, 10.0, "stale", "x").is_stale(10.0, 1.0)


def test_unknown_snapshot_keeps_its_reason_instead_of_going_stale(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    clock = FakeClock(0.5)
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")
    monitor = make_monitor(stale_after_s=1.0, clock=clock)
    monitor.poll_once()
    clock.now = 500.0
    snap = monitor.snapshot()
    assert snap.status == "unknown" and snap.error == "NVML init failed: Driver Not Loaded"


def test_stalled_thread_reports_stale_and_snapshot_does_not_block(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    monitor = make_monitor(stale_after_s=0.2)
    monitor.start()
    assert wait_until(lambda: monitor.snapshot().status == "ok")

    fake.hang("nvmlDeviceGetUtilizationRates")  # the poller is now stuck inside the driver
    assert wait_until(lambda: monitor.snapshot().status == "stale")
    # snapshot() shares no lock with the stuck poller.
    started = time.monotonic()
    for _ in range(1000):
        assert monitor.snapshot().gpu(0) is None
    assert time.monotonic() - started < 2

    fake.release()
    assert wait_until(lambda: monitor.snapshot().status == "ok")


# -- the thread never dies ----------------------------------------------------------


class ExplodingNvml:
    """The real pynvml, except chosen calls raise whatever the test sets."""

    def __init__(self) -> None:
        self.raise_on: dict[str, BaseException] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(pynvml, name)
        if not callable(attr) or not name.startswith("nvml"):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            exc = self.raise_on.get(name)
            if exc is not None:
                raise exc
            return attr(*args, **kwargs)

        return call


class NotAnException(BaseException):
    pass


@pytest.mark.parametrize(
    ("function", "exc", "reason"),
    [
        ("nvmlDeviceGetUtilizationRates", RuntimeError("boom"),
         "NVML driver error: GPU 0: nvmlDeviceGetUtilizationRates failed: boom"),
        ("nvmlDeviceGetCount", ZeroDivisionError("nope"),
         "NVML driver error: device count failed: nope"),
        ("nvmlDeviceGetMemoryInfo", NotAnException("weird"), "unexpected NotAnException from NVML: weird"),
        ("nvmlDeviceGetName", SystemExit(3), "unexpected SystemExit from NVML: 3"),
    ],
)
def test_thread_survives_arbitrary_exceptions(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor], function: str, exc: BaseException, reason: str
) -> None:
    nvml = ExplodingNvml()
    monitor = make_monitor(nvml=nvml)
    monitor.start()
    assert wait_until(lambda: monitor.snapshot().status == "ok")

    nvml.raise_on[function] = exc
    assert wait_until(lambda: monitor.snapshot().error == reason)
    assert monitor.snapshot().status == "unknown"
    assert monitor.running and len(nvml_threads()) == 1

    nvml.raise_on.clear()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    assert monitor.running


def test_non_nvml_exception_at_init_is_retried(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    nvml = ExplodingNvml()
    nvml.raise_on["nvmlInit"] = OSError("permission denied on /dev/nvidiactl")
    monitor = make_monitor(nvml=nvml)
    monitor.start()
    assert wait_until(lambda: monitor.snapshot().error == "NVML init failed: permission denied on /dev/nvidiactl")
    nvml.raise_on.clear()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    assert monitor.running


def test_bad_values_from_a_stand_in_module_are_unknown_not_a_crash(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    # A module whose memory call returns something without .total/.free/.used.
    stand_in = SimpleNamespace(
        **{name: getattr(pynvml, name) for name in (
            "nvmlInit", "nvmlShutdown", "nvmlDeviceGetCount", "nvmlDeviceGetHandleByIndex",
            "nvmlDeviceGetName", "nvmlDeviceGetUtilizationRates")},
        nvmlDeviceGetMemoryInfo=lambda handle: object(),
    )
    monitor = make_monitor(nvml=stand_in)
    snap = monitor.poll_once()
    assert snap.status == "unknown" and snap.error is not None
    assert snap.error.startswith("unexpected AttributeError from NVML")
    assert fake.calls("nvmlShutdown") == 1  # treated like a driver fault: re-init next time


# -- logging --------------------------------------------------------------------------


def test_logs_once_per_distinct_error_not_per_poll(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stratum_litellm.gpu")
    monitor = make_monitor()
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")
    for _ in range(20):
        monitor.poll_once()
    fake.clear_failures()
    fake.fail("nvmlInitWithFlags", "LIB_RM_VERSION_MISMATCH")
    for _ in range(20):
        monitor.poll_once()
    fake.clear_failures()
    for _ in range(5):
        monitor.poll_once()
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")  # a new episode is worth a new line
    monitor._shutdown_nvml()
    monitor.poll_once()

    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "stratum_litellm.gpu"]
    assert records == [
        (logging.WARNING, "GPU state unknown: NVML init failed: Driver Not Loaded (retrying with back-off)"),
        (logging.WARNING, "GPU state unknown: NVML init failed: RM has detected an NVML/RM version mismatch."
                          " (retrying with back-off)"),
        (logging.INFO, "GPU readings recovered"),
        (logging.WARNING, "GPU state unknown: NVML init failed: Driver Not Loaded (retrying with back-off)"),
    ]


def test_thread_logs_once_while_failing_continuously(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stratum_litellm.gpu")
    fake.fail("nvmlDeviceGetMemoryInfo", "GPU_IS_LOST", device=1)
    monitor = make_monitor(poll_interval_s=0.001)
    monitor.start()
    assert wait_until(lambda: fake.calls("nvmlDeviceGetCount_v2") >= 30)
    monitor.stop()
    messages = [r.getMessage() for r in caplog.records if r.name == "stratum_litellm.gpu"]
    assert messages == ["GPU partially readable: GPU 1 lost"]


# -- lifecycle ---------------------------------------------------------------------------


def test_start_is_idempotent_and_stop_shuts_nvml_down(
    fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]
) -> None:
    monitor = make_monitor()
    monitor.start()
    monitor.start()
    assert wait_until(lambda: monitor.snapshot().status == "ok")
    threads = nvml_threads()
    assert len(threads) == 1 and threads[0].daemon
    assert fake.init_count() == 1

    monitor.stop()
    assert not nvml_threads() and not monitor.running
    assert fake.calls("nvmlShutdown") == 1 and fake.init_count() == 0
    monitor.stop()  # a second stop is harmless and does not shut down twice
    assert fake.calls("nvmlShutdown") == 1

    monitor.start()  # restartable
    assert wait_until(lambda: fake.init_count() == 1)
    monitor.stop()
    assert fake.init_count() == 0


def test_stop_without_init_does_not_call_shutdown(fake: FakeNvml, make_monitor: Callable[..., GpuMonitor]) -> None:
    fake.fail("nvmlInitWithFlags", "DRIVER_NOT_LOADED")
    monitor = make_monitor()
    monitor.poll_once()
    monitor.stop()
    assert fake.calls("nvmlShutdown") == 0
