#!/usr/bin/env python3
"""Write the files of deploy/kubernetes/ that are made from other files of the repository.

Kustomize reads no file outside the kustomization's folder and cannot put a YAML file into
a custom resource's spec, so these are written here:

- deploy/kubernetes/config/: litellm_config.yaml, deploy/stratum.yaml and
  deploy/stratum.two-gpu.yaml, each under a line that says it is a copy (the base's
  configMapGenerator reads them);
- deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml: a PrometheusRule
  whose groups are deploy/prometheus/alerts.yml's.

    python scripts/kubernetes_sync.py           # write them (make kubernetes)
    python scripts/kubernetes_sync.py --check   # exit 1, naming the stale files

tests/unit/test_kubernetes.py fails while a written file differs from what this writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE = KUBERNETES / "components" / "prometheus-operator" / "prometheusrule.yaml"
#: Copy in deploy/kubernetes/config/ -> the file it copies.
CONFIG_COPIES = {
    KUBERNETES / "config" / "litellm_config.yaml": ROOT / "litellm_config.yaml",
    KUBERNETES / "config" / "stratum.yaml": ROOT / "deploy" / "stratum.yaml",
    KUBERNETES / "config" / "stratum.two-gpu.yaml": ROOT / "deploy" / "stratum.two-gpu.yaml",
}
COMMAND = "python scripts/kubernetes_sync.py (make kubernetes)"


def copy_text(source: Path) -> str:
    header = f"# A copy of {source.relative_to(ROOT)}, written by {COMMAND}: edit that file.\n"
    return header + source.read_text(encoding="utf-8")


class _Dumper(yaml.SafeDumper):
    """Block style for text with line breaks (rule descriptions written with `|`)."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def rule_text(alerts: Path = ALERTS) -> str:
    groups = yaml.safe_load(alerts.read_text(encoding="utf-8"))["groups"]
    rule = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "stratum-alerts",
            "labels": {"app.kubernetes.io/name": "stratum-alerts", "app.kubernetes.io/part-of": "stratum-litellm"},
        },
        "spec": {"groups": groups},
    }
    header = (f"# The alert rules of {alerts.relative_to(ROOT)} for the Prometheus operator, written by\n"
              f"# {COMMAND}: edit that file, then run it again.\n")
    return header + yaml.dump(rule, Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True)


def expected() -> dict[Path, str]:
    """Every written file and the text it should hold."""
    files = {copy: copy_text(source) for copy, source in CONFIG_COPIES.items()}
    files[RULE] = rule_text()
    return files


def stale() -> list[Path]:
    return [path for path, text in expected().items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only say which files are out of date")
    args = parser.parse_args(argv)
    if args.check:
        out_of_date = stale()
        for path in out_of_date:
            print(f"out of date: {path.relative_to(ROOT)} (run {COMMAND})", file=sys.stderr)
        return 1 if out_of_date else 0
    for path, text in expected().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
