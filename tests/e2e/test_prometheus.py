"""A real Prometheus (Debian's ``prometheus`` package, installed by ``make prometheus``)
scraping a real gateway (the repository's litellm_config.yaml and the plugin, in front of
two real llama-servers) with a scrape config generated from deploy/prometheus.yml, master
key included; then every query of every panel of the Grafana dashboard is run through
Prometheus' HTTP API and must return data.

Not run here: vLLM (the official build is CUDA-only; the CPU build takes about 45 s and
1.5 GB to start, and tests/e2e/test_stack.py runs it). The two vLLM panels are listed in
NEEDS_VLLM and checked to return nothing, so the list cannot go stale silently. The GPU is
the fake NVML library of tests/support/nvml_fake (the fake_gpu fixture, on any machine),
read by the real pynvml in the gateway process.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from conftest import COMPLEX_PROMPT, SIMPLE_PROMPT
from gateway import Gateway
from process import free_port
from prometheus_server import RULES, Prometheus, dashboard_exprs, wait_for_data, write_scrape_config
from redis_server import RedisServer
from rules_for_tests import BREAK_WORD
from servers import LlamaServer
from stratum_litellm.learning.example import Example
from stratum_litellm.learning.labels import Label
from stratum_litellm.learning.store import Store

# Queries that cannot return data in this test, and why (checked both ways below).
NEEDS_VLLM = {
    "sum by (model_name) (vllm:num_requests_waiting)": "no vLLM server runs in this test",
    "sum by (model_name) (vllm:num_requests_running)": "no vLLM server runs in this test",
    "max by (model_name) (vllm:kv_cache_usage_perc)": "no vLLM server runs in this test",
}
# Queries that read 0 until an event this test causes at its end (the router's state broken
# on purpose, which fails every later decision open): the counters start at zero.
ZERO_UNTIL_ERROR = {"sum by (where) (increase(stratum_internal_errors_total[$__rate_interval]))"}

ROUTER_SETTINGS: dict[str, Any] = {
    # SmolLM2 on a busy 2-core CPU is slow: keep the SLA out of the way of routing.
    "latency": {"sla_ms": 120_000},
    "reload": {"interval_s": 0.5},
    "python_rules": [{"callable": "rules_for_tests:sabotage"}],
}


def router_settings(label_store: Path) -> dict[str, Any]:
    """ROUTER_SETTINGS with the learning loop on (the learning row): judged samples taken
    from every answer but all dropped at the hour's budget (per_hour 0: no extra calls to the
    CPU tiers), Open WebUI's decisions recorded, and the label store given."""
    return dict(ROUTER_SETTINGS, learning={
        "store": {"path": str(label_store)},
        "judged": {"enabled": True, "share": 1.0, "per_hour": 0},
        "feedback": {"enabled": True},
    })


def ask(gw: Gateway, content: str, stream: bool = False) -> None:
    client = gw.client()
    if stream:
        for _ in client.chat.completions.create(model="gemma4-auto", messages=[{"role": "user", "content": content}],
                                                 max_tokens=8, stream=True):
            pass
    else:
        client.chat.completions.create(model="gemma4-auto", messages=[{"role": "user", "content": content}],
                                       max_tokens=8)


@pytest.fixture(scope="module")
def label_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A label store holding enough labels of both verdicts (learning.agreement.min_labels,
    50) for the profile's AUROC to be measured: the agreement panel has data."""
    path = tmp_path_factory.mktemp("labels") / "labels.db"
    store = Store(path)
    store.add(Label(Example.of_prompt(COMPLEX_PROMPT if i % 2 else SIMPLE_PROMPT), needs_strong=bool(i % 2),
                    source="judge", ref=f"prometheus-e2e-{i}") for i in range(60))
    store.close()
    return path


@pytest.fixture(scope="module")
def gateway(llama_fast: LlamaServer, llama_smart: LlamaServer, fake_gpu: dict[str, str],
            redis_server: RedisServer, label_store: Path) -> Iterator[Gateway]:
    # The shipped tiers, no `backend:`: each backend is read at its model_list api_base.
    # With the Redis the config reads from REDIS_HOST / REDIS_PORT: the shared-state panels.
    env = {**fake_gpu, "REDIS_HOST": redis_server.host, "REDIS_PORT": str(redis_server.port)}
    with Gateway(llama_fast.api_base, llama_smart.api_base, stratum=router_settings(label_store), env=env) as gw:
        yield gw


@pytest.fixture(scope="module")
def prometheus_config(gateway: Gateway, llama_smart: LlamaServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Nothing listens on the vLLM target: its job is part of the file, and shows down.
    return write_scrape_config(tmp_path_factory.mktemp("prometheus"), gateway.master_key,
                               [f"127.0.0.1:{gateway.port}"], llama_smart.base_url.split("//", 1)[1],
                               f"127.0.0.1:{free_port()}")


@pytest.fixture(scope="module")
def prometheus(prometheus_config: Path) -> Iterator[Prometheus]:
    with Prometheus(prometheus_config, prometheus_config.parent / "data") as prom:  # starts and waits
        yield prom


def test_promtool_accepts_the_generated_scrape_config(prometheus_config: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: run `make prometheus`"
    result = subprocess.run([promtool, "check", "config", str(prometheus_config)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_prometheus_scrapes_the_gateway_with_the_master_key(prometheus: Prometheus) -> None:
    deadline = time.monotonic() + 30
    while True:
        health = {t["labels"]["job"]: (t["health"], t["lastError"]) for t in prometheus.api("targets")["activeTargets"]}
        if health.get("gateway", ("",))[0] == "up" and health.get("llamacpp", ("",))[0] == "up":
            break
        assert time.monotonic() < deadline, health
        time.sleep(1)
    assert health["vllm"][0] == "down"
    rules = [r["name"] for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    assert rules == [r["alert"] for g in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"] for r in g["rules"]]


def test_every_dashboard_query_returns_data_on_a_real_prometheus(gateway: Gateway, prometheus: Prometheus) -> None:
    exprs = set(dashboard_exprs())
    assert set(NEEDS_VLLM) <= exprs and ZERO_UNTIL_ERROR <= exprs, "the lists name queries the dashboard lost"
    for content, stream in ((SIMPLE_PROMPT, False), (COMPLEX_PROMPT, False), (SIMPLE_PROMPT, True),
                            (COMPLEX_PROMPT, True), ("hello again", False)):
        ask(gateway, content, stream)
    # A settings edit the gateway picks up (reload panel).
    gateway.write_stratum(dict(gateway.stratum, complexity={"threshold": 0.66}))
    deadline = time.monotonic() + 20
    while (gateway.metric("stratum_config_reloads_total", result="ok") or 0) < 1:
        assert time.monotonic() < deadline, "the settings edit was never reloaded"
        time.sleep(0.3)
    ask(gateway, SIMPLE_PROMPT)

    expected_now = exprs - set(NEEDS_VLLM)
    results = wait_for_data(prometheus, expected_now)
    empty = sorted(expr for expr, result in results.items() if not result)
    assert not empty, f"{len(empty)} of {len(expected_now)} dashboard queries return no data: {empty}"
    for expr in ZERO_UNTIL_ERROR:
        assert all(float(r["value"][1]) == 0 for r in results[expr]), f"{expr} is not 0 before any error"
    auroc = results["max(stratum_profile_agreement_auroc)"]
    assert float(auroc[0]["value"][1]) > 0.5, "the default profile ranks the store's labels better than chance"
    assert prometheus.query('stratum_samples_total{outcome="budget"} > 0'), "the samples dropped at per_hour 0"
    backend_up = {r["metric"]["tier"]: r["metric"]["status"] for r in prometheus.query("stratum_backend_up == 1")}
    assert backend_up == {"fast": "ok", "smart": "ok"}, "both backends read from model_list's api_base"

    # Break the router on purpose: requests still succeed (fail open), the error panel fills.
    ask(gateway, f"{COMPLEX_PROMPT} {BREAK_WORD}")
    ask(gateway, SIMPLE_PROMPT)
    deadline = time.monotonic() + 60
    while not any(float(r["value"][1]) > 0 for expr in ZERO_UNTIL_ERROR for r in prometheus.query(expr)):
        assert time.monotonic() < deadline, "the internal error never reached the error panel"
        time.sleep(1)
    for expr, reason in NEEDS_VLLM.items():
        assert not prometheus.query(expr), f"{expr} returns data though {reason}: drop it from NEEDS_VLLM"
