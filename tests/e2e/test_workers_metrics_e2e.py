"""End to end: the real gateway with two workers (``litellm --num_workers 2``), where LiteLLM
serves /metrics from the workers' PROMETHEUS_MULTIPROC_DIR files, shows every gauge family
that a one-worker gateway shows, with values that mean the same; the decision counters
are summed across the workers. Both gateways run the repository's litellm_config.yaml and
the plugin in front of the same two real llama-servers, and read the fake NVML library of
tests/support/nvml_fake (the fake_gpu fixture, on any machine) so the GPU gauges are there
too.
"""

from __future__ import annotations

import math
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import pytest

from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from gateway import Gateway
from servers import LlamaServer
from waiting import wait_until

# --timeout_worker_healthcheck: on a loaded 2-core machine uvicorn's 5 s worker health
# check kills and respawns workers that are still importing, in a loop.
WORKERS = ["--num_workers", "2", "--timeout_worker_healthcheck", "300"]
# SmolLM2 on a busy CPU is slow: keep the SLA out of the way of routing.
ROUTER = {"latency": {"sla_ms": 120_000}}
# Read from traffic: each gateway saw different requests (the workers' views differ too).
TRAFFIC = {"stratum_tier_latency_ema_seconds", "stratum_tier_latency_samples",
           "stratum_backend_requests_running", "stratum_backend_requests_waiting"}

Gauges = dict[str, dict[tuple[tuple[str, str], ...], float]]


def gauges(gw: Gateway) -> Gauges:
    """The stratum_* gauges on the gateway's /metrics; a NaN sample (a label set a worker
    no longer has) counts as absent. ``*_created`` (a counter's start time, shown as a gauge
    by one process and not written at all in multiprocess mode) is left out."""
    out: Gauges = {}
    for family in text_string_to_metric_families(gw.gateway_metrics()):
        if family.type == "gauge" and family.name.startswith("stratum_") and not family.name.endswith("_created"):
            for s in family.samples:
                if not math.isnan(s.value):
                    out.setdefault(family.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def per_worker(folder: Path, prefix: str, name: str) -> dict[int, float]:
    """Each worker's own total of ``name`` in its ``<prefix>_<pid>.db`` file."""
    totals: dict[int, float] = {}
    for path in folder.glob(f"{prefix}_*.db"):
        pid = int(re.search(r"_(\d+)\.db$", path.name).group(1))  # type: ignore[union-attr]
        samples = [s.value for f in MultiProcessCollector.merge([str(path)], accumulate=True)
                   for s in f.samples if s.name == name]
        if samples:
            totals[pid] = sum(samples)
    return totals


def ask(gw: Gateway, content: str) -> None:
    # A client per request: a connection of its own, which either worker may accept.
    with gw.client() as client:
        client.chat.completions.create(model="gemma4-auto", messages=[{"role": "user", "content": content}],
                                       max_tokens=8)


def backends_ok(gw: Gateway) -> bool:
    return backends_ok_in(gauges(gw))


def backends_ok_in(shown: Gauges) -> bool:
    up = shown.get("stratum_backend_up", {})
    return {dict(k)["tier"]: dict(k)["status"] for k, v in up.items() if v == 1} == {"fast": "ok", "smart": "ok"}


@pytest.fixture(scope="module")
def multiproc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Named by the test: LiteLLM's default (/tmp/litellm_prometheus_multiproc) is shared by
    # every multi-worker gateway on the machine and wiped by each one that starts.
    return tmp_path_factory.mktemp("multiproc")


@pytest.fixture(scope="module")
def gateways(llama_fast: LlamaServer, llama_smart: LlamaServer, fake_gpu: dict[str, str],
             multiproc_dir: Path) -> Iterator[tuple[Gateway, Gateway]]:
    one = Gateway(llama_fast.api_base, llama_smart.api_base, stratum=ROUTER, env=fake_gpu, wait=False,
                  timeout_s=300)
    two = Gateway(llama_fast.api_base, llama_smart.api_base, stratum=ROUTER, wait=False, timeout_s=300,
                  env=dict(fake_gpu, PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir)), args=WORKERS)
    with one, two:  # both start at once; each ready check below waits for its own
        for gw in (one, two):
            assert gw.process is not None
            gw.process.wait_ready()
        # Ready means one worker answers; the test needs both to have published their gauges.
        assert wait_until(lambda: len(per_worker(multiproc_dir, "gauge_livesum", "stratum_tier_in_flight")) == 2,
                          timeout=240, interval=0.5), two.log_tail()
        yield one, two


def test_two_workers_show_every_gauge_of_one_worker_with_the_same_meaning(
        gateways: tuple[Gateway, Gateway], multiproc_dir: Path) -> None:
    one, two = gateways
    assert "PROMETHEUS_MULTIPROC_DIR" in two.log() and "PROMETHEUS_MULTIPROC_DIR" not in one.log()
    for content in (SIMPLE_PROMPT, COMPLEX_PROMPT):
        ask(one, content)

    # Requests on connections of their own, four at a time, until both workers decided some.
    sent = 0
    with ThreadPoolExecutor(4) as pool:
        while sent < 24:
            list(pool.map(lambda c: ask(two, c), [SIMPLE_PROMPT, COMPLEX_PROMPT] * 2))
            sent += 4
            decided = per_worker(multiproc_dir, "counter", "stratum_decisions_total")
            if len(decided) == 2 and all(decided.values()):
                break
    assert len(decided) == 2 and all(decided.values()), f"one worker took all {sent} requests: {decided}"

    def settled(gw: Gateway, requests: int) -> bool:
        shown = gauges(gw)
        return (sum(shown.get("stratum_tier_latency_samples", {}).values()) == requests
                and set(shown.get("stratum_tier_in_flight", {}).values()) == {0})

    # A worker starts its pollers at its first request; then each reads both backends.
    for gw in (one, two):
        assert wait_until(lambda: backends_ok(gw), timeout=60, interval=0.5), gauges(gw).get("stratum_backend_up")
    # The success callbacks and then a refresh (every second) run after the answers are out.
    assert wait_until(lambda: settled(one, 2), timeout=30, interval=0.5), gauges(one)
    assert wait_until(lambda: settled(two, sent), timeout=30, interval=0.5), gauges(two)
    # Compared when both gateways read both backends as up: each polls on its own, and on a
    # loaded machine one poll can time out (a backend shown down for a moment).
    shown: dict[str, Gauges] = {}

    def both_up() -> bool:
        shown.update(single=gauges(one), multi=gauges(two))
        return backends_ok_in(shown["single"]) and backends_ok_in(shown["multi"])

    assert wait_until(both_up, timeout=60, interval=0.5), shown
    single, multi = shown["single"], shown["multi"]

    assert set(single) <= set(multi), f"missing with two workers: {sorted(set(single) - set(multi))}"
    for name, samples in single.items():
        assert set(multi[name]) == set(samples), name
        if name not in TRAFFIC:
            assert multi[name] == samples, name
    assert multi["stratum_threshold"] == {(): 0.65}  # litellm_config.yaml's complexity.threshold
    assert multi["stratum_tier_in_flight"] == {(("tier", "fast"),): 0, (("tier", "smart"),): 0}
    assert {"stratum_gpu_memory_free_bytes", "stratum_backend_slots"} <= set(multi)
    # The counters are summed across the workers: one decision per request.
    text = two.gateway_metrics()
    total = sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                if s.name == "stratum_decisions_total")
    assert total == sent == sum(decided.values()), decided
