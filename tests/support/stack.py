"""Starts the whole serving stack exactly as `make run` does, for tests.

``Stack`` runs ``bash scripts/run.sh`` (set-up included: on a fresh machine it installs
and builds everything first) in a process group of its own, on free ports given through
the environment, with its logs and Open WebUI's data in a temp dir. It waits for the
"Ready." line run.sh prints once every service answers its health check, and stops it the
way a person does: SIGINT to run.sh's process group (Ctrl-C), after which run.sh stops
every service it started. As a safety net it then kills any process group run.sh recorded
in ``<log dir>/pgids`` that is still alive.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path


from backends import free_port
from lifecycle import GatewayClients, Managed

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "scripts" / "run.sh"
MASTER_KEY = "sk-stratum-stack-test-0123456789"
# First start on a fresh machine includes every install and build (about 20 minutes).
READY_TIMEOUT_S = float(os.environ.get("STRATUM_STACK_READY_TIMEOUT", "3600"))


class StackError(RuntimeError):
    """run.sh exited or did not become ready."""


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
        self.process: subprocess.Popen[str] | None = None
        self.output: list[str] = []
        self.ready = threading.Event()
        self._reader: threading.Thread | None = None
        self.start_s = 0.0
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

    def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        with open(self.tmp / "run.out", "w") as copy:
            for line in self.process.stdout:
                self.output.append(line.rstrip("\n"))
                copy.write(line)
                copy.flush()
                # The banner's last line: "Ready." and everything under it has been read.
                if line.startswith("Press Ctrl-C to stop."):
                    self.ready.set()

    def text(self) -> str:
        return "\n".join(self.output)

    def start(self) -> None:
        taken: set[int] = set()
        for name in ("gateway", "fast", "smart", "webui"):
            port = free_port()
            while port in taken:
                port = free_port()
            taken.add(port)
            self.ports[name] = port
        t0 = time.monotonic()
        self.process = subprocess.Popen(
            ["bash", str(RUN_SH)], cwd=ROOT, env=self.environment(), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
            # A shell that starts with SIGINT ignored cannot trap it (a background job of a
            # non-interactive shell, as under some CI runners, inherits that): undo it, so
            # the Ctrl-C below reaches run.sh's trap as it does in a terminal.
            preexec_fn=_default_sigint)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline = t0 + self.ready_timeout_s
        while not self.ready.wait(1.0):
            if self.process.poll() is not None:
                self._reader.join(5)
                raise StackError(f"run.sh exited with {self.process.returncode} before Ready.:\n"
                                 + "\n".join(self.output[-60:]))
            if time.monotonic() > deadline:
                raise StackError(f"run.sh not ready after {self.ready_timeout_s:.0f}s:\n"
                                 + "\n".join(self.output[-60:]))
        self.start_s = time.monotonic() - t0
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
        """Ctrl-C: SIGINT to run.sh's process group; returns run.sh's exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        if self._reader is not None:
            self._reader.join(5)
        return self.process.returncode if self.process.returncode is not None else -1

    def leftovers(self) -> list[tuple[int, str]]:
        """Processes still alive in run.sh's group or any service group it recorded."""
        groups = set(self.recorded_pgids) | set(self._pgids())
        if self.process is not None:
            groups.add(self.process.pid)
        return [m for g in sorted(groups) for m in group_members(g)]

    def stop(self) -> None:
        if self.process is None:
            return
        self.interrupt()
        # Safety net: whatever run.sh failed to stop.
        groups = set(self.recorded_pgids) | set(self._pgids()) | {self.process.pid}
        for g in groups:
            if group_members(g):
                try:
                    os.killpg(g, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()


def parse_metric(text: str, name: str, **labels: str) -> float | None:
    """The sum of the samples of ``name`` whose labels include ``labels`` (None: no sample)."""
    total, found = 0.0, False
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric_name, _, label_text = head.partition("{")
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            total += float(value)
            found = True
    return total if found else None
