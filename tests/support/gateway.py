"""Starts the real LiteLLM gateway (proxy) process with the repository's own config and
the stratum plugin, in front of backends given by URL."""

from __future__ import annotations

import copy
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from clients import GatewayClients
from process import ROOT, Managed, ManagedProcess, free_port

CONFIG = ROOT / "litellm_config.yaml"
SUPPORT = Path(__file__).resolve().parent
MASTER_KEY = "sk-stratum-test-0123456789"
LITELLM = Path(sys.executable).with_name("litellm")


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def project_stratum_settings() -> dict[str, Any]:
    return yaml.safe_load(CONFIG.read_text())["callback_settings"]["stratum"]


class Gateway(Managed, GatewayClients):
    """``litellm --config litellm_config.yaml`` on a free port.

    ``stratum`` overrides, when given, go to a settings file named by ``STRATUM_CONFIG``
    (the project's own section with the overrides merged in): the documented way to give
    the router settings of its own without touching the gateway config. ``args`` go to the
    ``litellm`` command line after the config, host and port (``["--num_workers", "2"]``).
    """

    master_key = MASTER_KEY

    def __init__(self, fast_api_base: str, smart_api_base: str, stratum: dict[str, Any] | None = None,
                 stratum_file: Path | None = None, env: dict[str, str] | None = None,
                 wait: bool = True, timeout_s: float = 120.0, config: Path = CONFIG,
                 args: list[str] | None = None) -> None:
        self.config = config
        self.args = list(args or [])
        self.fast_api_base = fast_api_base
        self.smart_api_base = smart_api_base
        self.stratum = stratum
        self.stratum_file = stratum_file
        self.extra_env = env or {}
        self.wait = wait
        self.timeout_s = timeout_s
        self.port = 0
        self.process: ManagedProcess | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="stratum-gateway-")
        self.log_path = Path(self._tmp.name) / "gateway.log"

    @property
    def stratum_path(self) -> Path:
        return Path(self._tmp.name) / "stratum.yaml"

    def write_stratum(self, overrides: dict[str, Any]) -> None:
        """(Re)write the router's settings file: the project's section plus ``overrides``."""
        text = yaml.safe_dump({"stratum": merged(project_stratum_settings(), overrides)})
        tmp = self.stratum_path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(self.stratum_path)  # an editor's save: the watcher never sees half a file

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRATUM_")}
        env.update(
            LITELLM_MASTER_KEY=MASTER_KEY,
            # No network here: use the cost map shipped with LiteLLM instead of fetching it
            # (the fetch retries for ~10 s and logs from a thread while the proxy imports).
            LITELLM_LOCAL_MODEL_COST_MAP="True",
            STRATUM_FAST_API_BASE=self.fast_api_base,
            STRATUM_SMART_API_BASE=self.smart_api_base,
            # Test-only rule modules (tests/support/rules_for_tests.py) are importable by the gateway.
            PYTHONPATH=os.pathsep.join(p for p in (str(SUPPORT), env.get("PYTHONPATH", "")) if p),
            PYTHONUNBUFFERED="1",
        )
        if self.stratum is not None:
            self.write_stratum(self.stratum)
            env["STRATUM_CONFIG"] = str(self.stratum_path)
        if self.stratum_file is not None:
            env["STRATUM_CONFIG"] = str(self.stratum_file)
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        self.port = free_port()
        self.spawn()

    def restart(self) -> None:
        """Start again on the same port, as a replaced replica behind its load balancer.
        The settings file is kept as it is."""
        assert self.process is not None and self.process.poll() is not None, "stop it first"
        self.spawn()

    def spawn(self) -> None:
        self.process = ManagedProcess(
            [str(LITELLM), "--config", str(self.config), "--host", "127.0.0.1", "--port", str(self.port),
             *self.args],
            f"{self.base_url}/health/liveliness", self.environment(), name="gateway",
            ready_timeout_s=self.timeout_s, stop_timeout_s=15, log_path=self.log_path)
        self.process.spawn()
        if self.wait:
            self.process.wait_ready()

    def wait_ready(self) -> None:
        """For a gateway made with ``wait=False``: until it answers."""
        assert self.process is not None
        self.process.wait_ready()

    def wait_exit(self, timeout_s: float = 90.0) -> int:
        assert self.process is not None
        code = self.process.wait(timeout_s)
        assert code is not None, f"the gateway still runs after {timeout_s} s"
        return code

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:])

    @property
    def gateway_url(self) -> str:
        return self.base_url

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()
