"""The alert rules of deploy/prometheus/alerts.yml, checked and unit-tested by the real
promtool (Debian's ``prometheus`` package; ``make test`` installs it, see
scripts/stack/ensure_prometheus.sh), and the scrape config that loads them."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES_DIR = ROOT / "deploy" / "prometheus"
RULES = RULES_DIR / "alerts.yml"
RULE_TESTS = RULES_DIR / "alerts.test.yml"
PROMETHEUS_FILE = ROOT / "deploy" / "prometheus.yml"
METRICS_SOURCE = ROOT / "stratum_litellm" / "gateway" / "metrics.py"

# What an operator of the router is promised (docs/deploy.md, "Alerts").
EXPECTED_ALERTS = {
    "StratumSmartTierHeldOff", "StratumGpuSignalUnknown", "StratumRouterInternalErrors",
    "StratumConfigReloadRefused", "StratumBackendDown", "StratumSharedStateDown", "StratumScrapeTargetDown",
    "StratumProfileAgreementLow", "StratumJudgedSamplesFailing",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: run `make prometheus` (apt-get install prometheus)")
    return found


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = subprocess.run([promtool(), "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            timeout=120, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule whose threshold is broken makes the suite fail: the tests bite."""
    broken = RULES.read_text(encoding="utf-8").replace("expr: stratum_gpu_known == 0", "expr: stratum_gpu_known == 2")
    assert broken != RULES.read_text(encoding="utf-8")
    (tmp_path / "alerts.yml").write_text(broken, encoding="utf-8")
    shutil.copy(RULE_TESTS, tmp_path / "alerts.test.yml")
    result = subprocess.run([promtool(), "test", "rules", "alerts.test.yml"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode != 0
    assert "StratumGpuSignalUnknown" in result.stdout + result.stderr


def test_every_promised_alert_exists_and_is_unit_tested() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert names == EXPECTED_ALERTS
    tests = yaml.safe_load(RULE_TESTS.read_text(encoding="utf-8"))["tests"]
    tested = {case["alertname"] for test in tests for case in test.get("alert_rule_test", [])}
    assert tested == EXPECTED_ALERTS
    for name in EXPECTED_ALERTS:
        firing = [case for test in tests for case in test.get("alert_rule_test", [])
                  if case["alertname"] == name and case.get("exp_alerts")]
        assert firing, f"no test shows {name} firing"


def test_rules_query_only_metrics_the_router_defines() -> None:
    source = METRICS_SOURCE.read_text(encoding="utf-8")
    defined = set(re.findall(r'"(stratum_[a-z0-9_]+)"', source))
    for rule in alert_rules():
        for name in re.findall(r"\bstratum_[a-z0-9_]+", rule["expr"]):
            base = name.removesuffix("_total")
            assert base in defined, f"{rule['alert']} queries {name}, which metrics.py does not define"


def test_scrape_config_loads_the_rules_where_compose_mounts_them() -> None:
    config = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    assert config["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    volumes = compose["services"]["prometheus"]["volumes"]
    assert "./deploy/prometheus:/etc/prometheus/rules:ro" in volumes
