"""Helpers that start real local backends for tests (plain functions/classes, no fixtures).

- ``LlamaServer``: the real llama.cpp ``llama-server`` with a real GGUF (built and cached by
  ``scripts/backends.sh``; paths from ``scripts/backend_paths.py``).
- ``StubBackend``: ``tests/stub_backend.py`` in its own process, only for what a real backend
  cannot do on demand (stalls, injected errors).

Both bind 127.0.0.1 on a free port, wait until ready, log to a temp file (not the pytest
output) and show the tail of that log when the server dies or never becomes ready.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from lifecycle import Managed

ROOT = Path(__file__).resolve().parents[2]
STUB_SCRIPT = Path(__file__).resolve().with_name("stub_backend.py")


def _load_backend_paths() -> ModuleType:
    # scripts/ is not a package; load the one source of truth for versions by path.
    if "backend_paths" in sys.modules:
        return sys.modules["backend_paths"]
    spec = importlib.util.spec_from_file_location("backend_paths", ROOT / "scripts" / "backend_paths.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["backend_paths"] = module
    spec.loader.exec_module(module)
    return module


backend_paths = _load_backend_paths()
BackendMissing: type[Exception] = backend_paths.BackendMissing


def llama_server_binary() -> Path:
    """The cached llama-server; raises BackendMissing telling to run scripts/backends.sh."""
    return backend_paths.llama_server_binary()


def smollm2_gguf() -> Path:
    """The cached SmolLM2-135M-Instruct Q4_1 GGUF; raises BackendMissing if absent."""
    return backend_paths.smollm2_gguf()


def free_port() -> int:
    """A port free right now (the OS picks it); callers retry if someone takes it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class BackendError(RuntimeError):
    """A backend process died or did not become ready in time."""


class _Process(Managed):
    """A server subprocess on 127.0.0.1:<port>, logging to a temp file, ready when /health is 200."""

    name = "backend"
    ready_timeout = 30.0

    def __init__(self) -> None:
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None
        self.startup_s = 0.0  # seconds from spawn until /health answered 200

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def start(self) -> None:
        # A port picked by free_port() can be taken before the server binds it; retry then.
        for attempt in range(3):
            self.port = free_port()
            fd, log = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            self.log_path = Path(log)
            t0 = time.monotonic()
            with os.fdopen(fd, "wb") as log_file:
                self.process = subprocess.Popen(
                    self.command(self.port), stdout=log_file, stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL, cwd=ROOT,
                )
            try:
                self._wait_ready()
                self.startup_s = time.monotonic() - t0
                return
            except BackendError:
                port_clash = "address already in use" in self.log_tail().lower()
                if not port_clash or attempt == 2:
                    self.stop()
                    raise
                self.stop()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self.process.poll() is not None:
                    raise BackendError(
                        f"{self.name} exited with code {self.process.returncode} before it was ready;"
                        f" log tail:\n{self.log_tail()}")
                try:
                    if client.get(f"{self.base_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass  # not listening yet; /health is 503 while llama-server loads the model
                if time.monotonic() > deadline:
                    raise BackendError(
                        f"{self.name} not ready after {self.ready_timeout:.0f} s on {self.base_url};"
                        f" log tail:\n{self.log_tail()}")
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()


class LlamaServer(_Process):
    """The real llama.cpp server with a GGUF; ``with LlamaServer(smollm2_gguf()) as s: s.api_base``."""

    ready_timeout = 120.0

    def __init__(self, model: Path | str | None = None, *, alias: str | None = None, slots: int = 2,
                 ctx: int = 4096, threads: int | None = None, extra_args: list[str] | None = None,
                 ready_timeout: float | None = None) -> None:
        super().__init__()
        self.binary = llama_server_binary()
        self.model = Path(model) if model else smollm2_gguf()
        self.alias = alias
        self.slots = slots
        self.ctx = ctx  # total KV context, shared by the slots (ctx / slots each)
        # One thread by default: tests run several servers plus LiteLLM on 2 cores, and
        # llama.cpp's threads wait on each other, so when cores are oversubscribed 2 threads
        # measured 5-10x SLOWER than 1 here. STRATUM_LLAMA_THREADS overrides on idle machines.
        self.threads = threads or int(os.environ.get("STRATUM_LLAMA_THREADS", "1"))
        self.extra_args = extra_args or []
        self.name = f"llama-server-{alias or self.model.stem}"
        if ready_timeout:
            self.ready_timeout = ready_timeout

    def command(self, port: int) -> list[str]:
        cmd = [str(self.binary), "-m", str(self.model), "--host", "127.0.0.1", "--port", str(port),
               "--metrics", "--slots", "--no-webui", "-np", str(self.slots), "-c", str(self.ctx),
               "-t", str(self.threads), "-tb", str(self.threads)]
        if self.alias:
            cmd += ["--alias", self.alias]
        return cmd + self.extra_args


class StubBackend(_Process):
    """``tests/stub_backend.py`` in its own process; ``set_behaviour(ttft_ms=5000)`` makes it stall."""

    def __init__(self, name: str = "stub", models: list[str] | None = None) -> None:
        super().__init__()
        self.name = name
        self.models = models or []
        self._client: httpx.Client | None = None

    def command(self, port: int) -> list[str]:
        cmd = [sys.executable, str(STUB_SCRIPT), "--port", str(port), "--name", self.name]
        for m in self.models:
            cmd += ["--model", m]
        return cmd

    def _admin(self) -> httpx.Client:
        # One kept-alive client: a fresh httpx client per call costs ~0.1 s (SSL context set-up).
        if self._client is None:
            self._client = httpx.Client(base_url=f"{self.base_url}/admin", timeout=5)
        return self._client

    def set_behaviour(self, **behaviour: Any) -> dict[str, Any]:
        """Partial update, e.g. ``ttft_ms=3000`` (stall), ``fail=True`` (HTTP 500), ``tokens=20``."""
        r = self._admin().post("/behaviour", json=behaviour)
        r.raise_for_status()
        return dict(r.json())

    def requests(self) -> list[dict[str, Any]]:
        """Chat requests received so far: ``[{"model": ..., "messages": n}, ...]``."""
        r = self._admin().get("/requests")
        r.raise_for_status()
        return list(r.json()["requests"])

    def clear_requests(self) -> None:
        self._admin().delete("/requests").raise_for_status()

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        super().stop()
