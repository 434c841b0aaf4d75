"""The router's gauges with PROMETHEUS_MULTIPROC_DIR set (a gateway with several workers):
copied into per-process files that prometheus-client's MultiProcessCollector combines.

prometheus-client picks its file-backed values when it is imported, so each "worker" here
is a fresh Python process with the variable set; the test process only reads the files.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from conftest import COMPLEX_PROMPT

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def run(code: str, folder: Path) -> list:
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(folder))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    if out.returncode != 0:
        pytest.fail(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])


def combined(folder: Path, *files: str) -> Samples:
    """What LiteLLM's /metrics shows for the files (all of them by default)."""
    if files:
        families = MultiProcessCollector.merge([str(folder / f) for f in files], accumulate=True)
    else:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=str(folder))
        families = registry.collect()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in families for s in family.samples if s.name.startswith("stratum_")}


WORKER = """
import json, os
from prometheus_client import REGISTRY, generate_latest
from stratum_litellm.config import parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine
engine = RouterEngine(parse_settings({"gpu": {"enabled": False}, "complexity": {"threshold": %(threshold)s}}))
metrics.publish(engine)
for i in range(%(requests)d):
    engine.route({"model": "gemma4-auto", "litellm_call_id": f"m{i}",
                  "messages": [{"role": "user", "content": %(prompt)r}]})
metrics._mirror.refresh()  # what the thread does every second
print(json.dumps([os.getpid(), b"stratum_threshold" in generate_latest(REGISTRY), metrics._mirror.running]))
"""


def test_two_workers_files_combine_by_the_mode_table(tmp_path: Path) -> None:
    # Two workers that stay alive (their files stay): 1 and 2 requests in flight on smart.
    first, on_registry, running = run(WORKER % dict(threshold=0.4, requests=1, prompt=COMPLEX_PROMPT), tmp_path)
    assert not on_registry and running  # no custom collector: the files are the only way out
    second, _, _ = run(WORKER % dict(threshold=0.5, requests=2, prompt=COMPLEX_PROMPT), tmp_path)

    shown = combined(tmp_path)
    assert shown[("stratum_tier_in_flight", (("tier", "smart"),))] == 3  # livesum: each worker its own
    assert shown[("stratum_tier_in_flight", (("tier", "fast"),))] == 0
    assert shown[("stratum_threshold", ())] == 0.5  # livemostrecent: the later write
    assert ("stratum_gpu_known", (("gpu", "0"),)) not in shown  # GPU monitoring off: not reported
    # The mode is the file a family lands in: the per-worker counts alone are summed.
    summed = combined(tmp_path, f"gauge_livesum_{first}.db")
    assert {name for name, _ in summed} == {"stratum_tier_in_flight", "stratum_tier_latency_samples"}
    assert ("stratum_threshold", ()) in combined(tmp_path, f"gauge_livemostrecent_{second}.db")


MIRROR = """
import json, math, time
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from stratum_litellm.gateway.multiprocess import GaugeMirror

def shown():
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return {s.name + json.dumps(s.labels, sort_keys=True): (None if math.isnan(s.value) else s.value)
            for f in registry.collect() for s in f.samples if s.name.startswith("stratum_")}

class Engine:
    errors = []
    def stats(self):
        return None
    def record_error(self, where, exc):
        self.errors.append([where, str(exc)])

status = ["down"]
def read(stats):
    if status[0] == "boom":
        raise RuntimeError("boom")
    up = GaugeMetricFamily("stratum_backend_up", "up", labels=["tier", "status"])
    up.add_metric(["fast", status[0]], 1 if status[0] == "ok" else 0)
    ema = GaugeMetricFamily("stratum_tier_latency_ema_seconds", "ema", labels=["tier", "measure"])
    ema.add_metric(["fast", "ttft"], 0.25)
    return [up, ema, GaugeMetricFamily("stratum_threshold", "t", value=0.65)]

engine = Engine()
mirror = GaugeMirror(read, interval_s=0.05)
steps = []
mirror.show(engine)  # written at once, before the thread's first round
steps.append(shown())
status[0] = "ok"
time.sleep(0.5)  # the thread's rounds alone
steps.append(shown())
status[0] = "boom"
time.sleep(0.3)
steps.append([mirror.running, engine.errors[:1]])
status[0] = "ok"
mirror.show(None)
steps.append([mirror.running, shown()])
print(json.dumps(steps))
"""


def test_the_mirror_refreshes_sets_vanished_label_sets_to_nan_survives_errors_and_stops(tmp_path: Path) -> None:
    first, refreshed, failing, (running, withdrawn) = run(MIRROR, tmp_path)
    down = 'stratum_backend_up{"status": "down", "tier": "fast"}'
    ok = 'stratum_backend_up{"status": "ok", "tier": "fast"}'
    ema = 'stratum_tier_latency_ema_seconds{"measure": "ttft", "tier": "fast"}'
    assert first == {down: 0, ema: 0.25, "stratum_threshold{}": 0.65}
    # The status that went away reads NaN, not its last value (nor 0, which the
    # StratumBackendDown alert, `stratum_backend_up{status="down"} == 0`, would match).
    assert refreshed == {down: None, ok: 1, ema: 0.25, "stratum_threshold{}": 0.65}
    assert failing == [True, [["metrics", "boom"]]]  # counted, the thread goes on
    assert not running  # withdraw stops the thread, and the engine's gauges vanish
    assert withdrawn == {down: None, ok: None, ema: None, "stratum_threshold{}": None}


def test_a_withdrawn_engine_stops_the_thread_and_reads_nan(tmp_path: Path) -> None:
    code = """
import json, math
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from stratum_litellm.config import parse_settings
from stratum_litellm.gateway import metrics
from stratum_litellm.gateway.engine import RouterEngine
engine = RouterEngine(parse_settings({"gpu": {"enabled": False}}))
metrics.publish(engine)
before = [metrics.published() is engine, metrics._mirror.running]
engine.close()
registry = CollectorRegistry()
MultiProcessCollector(registry)
left = [s.value for f in registry.collect() for s in f.samples if s.name == "stratum_threshold"]
print(json.dumps(before + [metrics.published() is None, metrics._mirror.running, math.isnan(left[0])]))
"""
    assert run(code, tmp_path) == [True, True, True, False, True]
    assert math.isnan(combined(tmp_path)[("stratum_threshold", ())])
