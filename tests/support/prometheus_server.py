"""``Prometheus``: a real ``prometheus`` (Debian's package, installed by ``make prometheus``) on
a free loopback port with its own data directory, run as a ``ManagedProcess``; the scrape
config it runs, made from the repository's deploy/prometheus.yml with a test's targets; and
the queries of the repository's Grafana dashboard, run through its HTTP API.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from process import ROOT, ManagedProcess, free_port

PROMETHEUS_FILE = ROOT / "deploy" / "prometheus.yml"
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "stratum.json"
# Grafana fills $__rate_interval in; with a 1 s scrape a minute holds plenty of samples.
RATE_INTERVAL = "1m"


def dashboard_panels() -> list[dict[str, Any]]:
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [p for top in board["panels"] for p in (top, *top.get("panels", []))]


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard_panels() for t in p.get("targets", [])]


def panel_exprs(title: str) -> list[str]:
    """The queries of the dashboard's panel titled ``title``, in their order."""
    panels = [p for p in dashboard_panels() if p.get("title") == title]
    assert len(panels) == 1, f"the dashboard has {len(panels)} panels titled {title!r}"
    return [t["expr"] for t in panels[0]["targets"]]


def scrape_config(gateway_targets: Sequence[str], llamacpp_target: str, vllm_target: str,
                  bearer_file: Path) -> dict[str, Any]:
    """deploy/prometheus.yml with this test's targets (one per gateway replica under the
    gateway job), bearer file, rules and a 1 s interval."""
    config = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(RULES)]
    targets = {"gateway": list(gateway_targets), "llamacpp": [llamacpp_target], "vllm": [vllm_target]}
    for job in config["scrape_configs"]:
        name = job["job_name"]
        if name in targets:
            job["static_configs"] = [{"targets": targets[name]}]
        if "authorization" in job:
            job["authorization"]["credentials_file"] = str(bearer_file)
    config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] != "prometheus"]
    return config


def write_scrape_config(folder: Path, master_key: str, gateway_targets: Sequence[str], llamacpp_target: str,
                        vllm_target: str) -> Path:
    """:func:`scrape_config` written to ``folder``/prometheus.yml, the gateways' master key
    in a bearer file next to it, as compose mounts it."""
    bearer = folder / "gateway_bearer"
    bearer.write_text(master_key)
    bearer.chmod(0o600)
    path = folder / "prometheus.yml"
    config = scrape_config(gateway_targets, llamacpp_target, vllm_target, bearer)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Prometheus(ManagedProcess):
    """``prometheus`` on a free loopback port with its own data directory."""

    def __init__(self, config_file: Path, data_dir: Path) -> None:
        self.port = free_port()
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus is missing: run `make prometheus` (apt-get install prometheus)", pytrace=False)
        super().__init__([binary, f"--config.file={config_file}", f"--storage.tsdb.path={data_dir}",
                          f"--web.listen-address=127.0.0.1:{self.port}"],
                         f"http://127.0.0.1:{self.port}/-/ready", name="prometheus", ready_timeout_s=60)

    def api(self, path: str, **params: str) -> Any:
        reply = httpx.get(f"http://127.0.0.1:{self.port}/api/v1/{path}", params=params, timeout=10)
        reply.raise_for_status()
        body = reply.json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, rate_interval: str = RATE_INTERVAL) -> list[dict[str, Any]]:
        """``expr`` now, with Grafana's variables filled in as the dashboard's defaults would."""
        data = self.api("query", query=expr.replace("$__rate_interval", rate_interval).replace("$tier", ".*"))
        return data["result"]

    def target_health(self) -> dict[str, list[str]]:
        """Each job's targets' health (up, down, unknown)."""
        health: dict[str, list[str]] = {}
        for target in self.api("targets")["activeTargets"]:
            health.setdefault(target["labels"]["job"], []).append(target["health"])
        return health


def wait_for_data(prom: Prometheus, exprs: set[str], timeout_s: float = 90.0) -> dict[str, list[Any]]:
    deadline = time.monotonic() + timeout_s
    while True:
        results = {expr: prom.query(expr) for expr in exprs}
        if all(results.values()) or time.monotonic() > deadline:
            return results
        time.sleep(1)
