"""Launchers of the model servers the tests route to (plain classes, no fixtures).

- ``LlamaServer``: the real llama.cpp ``llama-server`` with a real GGUF (built and cached by
  ``scripts/stack/build_llama_server.sh``; paths from ``scripts/stack/paths.py``).
- ``StubBackend``: ``tests/support/stub_backend.py`` in its own process, only for what a
  real server cannot do on demand (stalls, injected errors).

Both bind 127.0.0.1 on a free port and run as a ``ManagedProcess``: ready when /health
answers 200, logging to a temp file (not the pytest output) whose tail is shown when the
server dies or never becomes ready.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

from process import ROOT, Managed, ManagedProcess, start_on_a_free_port

STUB_SCRIPT = Path(__file__).resolve().with_name("stub_backend.py")


def _load_paths() -> ModuleType:
    # scripts/ is not a package; load the one table of versions and paths by its path.
    if "stack_paths" in sys.modules:
        return sys.modules["stack_paths"]
    spec = importlib.util.spec_from_file_location("stack_paths", ROOT / "scripts" / "stack" / "paths.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["stack_paths"] = module
    spec.loader.exec_module(module)
    return module


paths = _load_paths()
ArtifactMissing: type[Exception] = paths.ArtifactMissing


def llama_server_binary() -> Path:
    """The cached llama-server; raises ArtifactMissing saying how to build it."""
    return paths.llama_server_binary()


def smollm2_gguf() -> Path:
    """The cached SmolLM2-135M-Instruct Q4_1 GGUF; raises ArtifactMissing if absent."""
    return paths.smollm2_gguf()


class _Server(Managed):
    """A server on 127.0.0.1:<port>, ready when /health is 200."""

    name = "server"
    ready_timeout = 30.0

    def __init__(self) -> None:
        self.port = 0
        self.process: ManagedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def startup_s(self) -> float:
        """Seconds from spawn until /health answered 200."""
        return self.process.ready_s if self.process else 0.0

    def command(self, port: int) -> list[str]:
        raise NotImplementedError

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process else "(no log)"

    def start(self) -> None:
        start_on_a_free_port(self, self._launch)

    def _launch(self) -> None:
        # /health is 503 while llama-server loads the model: ready means 200.
        self.process = ManagedProcess(self.command(self.port), f"{self.base_url}/health", name=self.name,
                                      ready_timeout_s=self.ready_timeout)
        self.process.start()

    def stop(self) -> None:
        if self.process is not None:
            self.process.close()

    def close(self) -> None:
        self.stop()


class LlamaServer(_Server):
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


class StubBackend(_Server):
    """``tests/support/stub_backend.py`` in its own process; ``set_behaviour(ttft_ms=5000)`` makes it stall."""

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

    def peak(self) -> int:
        """The most chat requests it answered at once since the last :meth:`clear_requests`."""
        r = self._admin().get("/requests")
        r.raise_for_status()
        return int(r.json()["peak"])

    def clear_requests(self) -> None:
        self._admin().delete("/requests").raise_for_status()

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        super().stop()
