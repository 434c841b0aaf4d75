"""Starts the whole serving stack exactly as `make run` does, for tests.

``Stack`` runs ``bash scripts/stack/run.sh`` (set-up included: on a fresh machine it
installs and builds everything first) as a ``ManagedProcess``, on free ports given through
the environment, with its logs and Open WebUI's data in a temp dir. It is ready at the
last line of the banner run.sh prints under "Ready." once every service answers its health
check, and it stops the way a person does: SIGINT to run.sh's process group (Ctrl-C),
after which run.sh stops every service it started. As a safety net it then kills any
process group run.sh recorded in ``<log dir>/pgids`` that is still alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from pathlib import Path

from clients import GatewayClients
from process import ROOT, Managed, ManagedProcess, free_port

RUN_SH = ROOT / "scripts" / "stack" / "run.sh"
MASTER_KEY = "sk-stratum-stack-test-0123456789"
# First start on a fresh machine includes every install and build (about 20 minutes).
READY_TIMEOUT_S = float(os.environ.get("STRATUM_STACK_READY_TIMEOUT", "3600"))
# The banner's last line: once it is read, "Ready." and everything under it is in the log.
READY_LINE = r"^Press Ctrl-C to stop\."


def group_members(pgid: int) -> list[tuple[int, str]]:
    """Live (non-zombie) processes of a process group: [(pid, command)]."""
    out = subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(pgid)],
                         capture_output=True, text=True).stdout
    members = []
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) >= 2 and not parts[1].startswith("Z"):
            members.append((int(parts[0]), parts[2] if len(parts) > 2 else ""))
    return members


class Stack(Managed, GatewayClients):
    master_key = MASTER_KEY

    def __init__(self, *, webui: bool = True, env: dict[str, str] | None = None,
                 ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.webui = webui
        self.extra_env = env or {}
        self.ready_timeout_s = ready_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="stratum-stack-")
        self.tmp = Path(self._tmp.name)
        self.log_dir = self.tmp / "logs"
        self.webui_data = self.tmp / "webui-data"
        self.ports: dict[str, int] = {}
        self.process: ManagedProcess | None = None
        self.recorded_pgids: dict[int, str] = {}

    # --- addresses -----------------------------------------------------------------------
    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def fast(self) -> str:
        return f"http://127.0.0.1:{self.ports['fast']}"

    @property
    def smart(self) -> str:
        return f"http://127.0.0.1:{self.ports['smart']}"

    @property
    def webui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['webui']}"

    @property
    def gateway_url(self) -> str:
        return self.gateway

    # --- life cycle ------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        # Nothing of the caller's STRATUM_* (an exported STRATUM_FAST_API_BASE would turn
        # the local backends off) except where the cache lives.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("STRATUM_") or k == "STRATUM_CACHE_DIR"}
        env.update(
            STRATUM_PORT=str(self.ports["gateway"]),
            STRATUM_FAST_PORT=str(self.ports["fast"]),
            STRATUM_SMART_PORT=str(self.ports["smart"]),
            STRATUM_WEBUI_PORT=str(self.ports["webui"]),
            STRATUM_WEBUI="1" if self.webui else "0",
            STRATUM_LOG_DIR=str(self.log_dir),
            STRATUM_WEBUI_DATA_DIR=str(self.webui_data),
            LITELLM_MASTER_KEY=MASTER_KEY,
            PYTHONUNBUFFERED="1",
        )
        # The .venv's python3 first is fine (the scripts need only the stdlib), but a venv's
        # VIRTUAL_ENV must not leak into the services' own venvs.
        env.pop("VIRTUAL_ENV", None)
        env.update(self.extra_env)
        return env

    def text(self) -> str:
        """Everything run.sh printed so far."""
        return self.process.log().rstrip("\n") if self.process else ""

    @property
    def start_s(self) -> float:
        """Seconds from starting run.sh to its banner."""
        return self.process.ready_s if self.process else 0.0

    def start(self) -> None:
        taken: set[int] = set()
        for name in ("gateway", "fast", "smart", "webui"):
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            self.ports[name] = port
        self.process = ManagedProcess(["bash", str(RUN_SH)], env=self.environment(), name="run.sh",
                                      ready_line=READY_LINE, ready_timeout_s=self.ready_timeout_s,
                                      stop_signal=signal.SIGINT, stop_timeout_s=60,
                                      log_path=self.tmp / "run.out", tail_lines=60)
        self.process.start()
        self.recorded_pgids = self._pgids()

    def _pgids(self) -> dict[int, str]:
        path = self.log_dir / "pgids"
        out: dict[int, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                pid, _, name = line.partition(" ")
                if pid.isdigit():
                    out[int(pid)] = name
        return out

    def interrupt(self, timeout_s: float = 60.0) -> int:
        """Ctrl-C: SIGINT to run.sh's process group; returns run.sh's exit code (-1: still running)."""
        assert self.process is not None
        if self.process.running():
            self.process.signal_group(signal.SIGINT)
            self.process.wait(timeout_s)
        code = self.process.returncode
        return code if code is not None else -1

    def leftovers(self) -> list[tuple[int, str]]:
        """Processes still alive in run.sh's group or any service group it recorded."""
        groups = set(self.recorded_pgids) | set(self._pgids())
        if self.process is not None and self.process.popen is not None:
            groups.add(self.process.pid)
        return [m for g in sorted(groups) for m in group_members(g)]

    def stop(self) -> None:
        if self.process is None or self.process.popen is None:
            return
        self.interrupt()
        # Safety net: whatever run.sh failed to stop.
        for g in set(self.recorded_pgids) | set(self._pgids()):
            if group_members(g):
                try:
                    os.killpg(g, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.process.stop()

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

