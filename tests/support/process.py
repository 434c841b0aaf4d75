"""What every launcher in tests/support shares: the ``with`` shape, a free port, and
``ManagedProcess``, the one place that starts, watches and stops a test's processes.

``ManagedProcess(cmd, health_url, env)`` runs ``cmd`` in a process group of its own with its
output in a log file, is ready when ``health_url`` answers 200 (or when a line of its output
matches ``ready_line``), shows the tail of that log when it dies or never becomes ready, and
stops the whole group: ``stop_signal`` first, SIGKILL for whatever is left.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Protocol, TypeVar

import httpx

ROOT = Path(__file__).resolve().parents[2]

_M = TypeVar("_M", bound="Managed")


class Managed:
    """``with helper:`` starts it, and closes it on exit or when the start fails half-way."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _M) -> _M:
        try:
            self.start()
        except BaseException:
            self.close()  # a half-started process must not outlive a failed start
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# Each pytest-xdist worker picks from a band of its own, below Linux's ephemeral range
# (32768-60999): a port picked here and bound many seconds later (a gateway) is then never
# handed by the OS to a server another worker binds to port 0 meanwhile.
_BAND = 2500
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ...
_LOW = (22000 + int(_WORKER[2:]) * _BAND
        if _WORKER.startswith("gw") and _WORKER[2:].isdigit() and int(_WORKER[2:]) < 4 else None)


def free_port() -> int:
    """A port free right now; callers retry if someone takes it first. Under pytest-xdist,
    from the worker's own band; otherwise the OS picks it."""
    if _LOW is None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])
    low = _LOW
    for _ in range(200):
        port = random.randrange(low, low + _BAND)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {low}-{low + _BAND - 1}")


class _OnAPort(Protocol):
    port: int

    def log_tail(self, lines: int = ...) -> str: ...

    def stop(self) -> None: ...


def start_on_a_free_port(server: _OnAPort, launch: Callable[[], None], attempts: int = 3) -> None:
    """Set ``server.port`` to a free port and ``launch()`` on it. A port free_port() picked can
    be taken before the server binds it: when the launch fails and the server's log says
    "address already in use", stop it and try another port (``attempts`` in all); any other
    failure, or the last clash, is raised."""
    for attempt in range(attempts):
        server.port = free_port()
        try:
            launch()
            return
        except ProcessError:
            port_clash = "address already in use" in server.log_tail().lower()
            server.stop()
            if not port_clash or attempt == attempts - 1:
                raise


class ProcessError(RuntimeError):
    """A process exited before it was ready, or did not become ready in time."""


def _default_sigint() -> None:
    # A process that starts with SIGINT ignored cannot trap it (a background job of a
    # non-interactive shell, as under some CI runners, inherits that): undo it, so a
    # Ctrl-C sent to stop it arrives as it does in a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ManagedProcess(Managed):
    """``cmd`` in its own process group, logging to ``log_path`` (a temp file by default)."""

    def __init__(self, cmd: Sequence[str], health_url: str | None = None,
                 env: Mapping[str, str] | None = None, *, name: str | None = None,
                 ready_line: str | re.Pattern[str] | None = None, ready_timeout_s: float = 30.0,
                 stop_signal: int = signal.SIGTERM, stop_timeout_s: float = 10.0,
                 cwd: Path = ROOT, log_path: Path | None = None, tail_lines: int = 30) -> None:
        self.cmd = [str(part) for part in cmd]
        self.health_url = health_url
        self.env = dict(env) if env is not None else None
        self.name = name or Path(self.cmd[0]).name
        self.ready_line = re.compile(ready_line) if isinstance(ready_line, str) else ready_line
        self.ready_timeout_s = ready_timeout_s
        self.stop_signal = stop_signal
        self.stop_timeout_s = stop_timeout_s
        self.cwd = cwd
        self.tail_lines = tail_lines  # how much of the log a failure shows
        self._own_log = log_path is None
        if log_path is None:
            fd, name_ = tempfile.mkstemp(prefix=f"{self.name}-", suffix=".log")
            os.close(fd)
            log_path = Path(name_)
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None
        self.ready_match: re.Match[str] | None = None  # the ready line, once seen
        self.ready_s = 0.0  # seconds from spawn until ready
        self._seen = threading.Event()
        self._reader: threading.Thread | None = None
        self._spawned_at = 0.0

    # --- state -----------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        assert self.popen is not None, f"{self.name} was never started"
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode if self.popen is not None else None

    def poll(self) -> int | None:
        return self.popen.poll() if self.popen is not None else None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int | None = None) -> str:
        lines = lines or self.tail_lines
        text = self.log()
        return "\n".join(text.splitlines()[-lines:]) if text else "(no log)"

    # --- life cycle ------------------------------------------------------------------------
    def spawn(self) -> None:
        """Start the process without waiting for it to be ready."""
        piped = self.ready_line is not None  # a ready line must be read as it is written
        with open(self.log_path, "wb") as log:
            self._spawned_at = time.monotonic()
            self.popen = subprocess.Popen(
                self.cmd, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if piped else log, stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_default_sigint if self.stop_signal == signal.SIGINT else None)
        if piped:
            self._reader = threading.Thread(target=self._copy_output, name=f"{self.name}-log", daemon=True)
            self._reader.start()

    def _copy_output(self) -> None:
        assert self.popen is not None and self.popen.stdout is not None and self.ready_line is not None
        with open(self.log_path, "ab") as log:
            for raw in self.popen.stdout:
                log.write(raw)
                log.flush()  # everything before the ready line is in the log once it is seen
                if not self._seen.is_set():
                    match = self.ready_line.search(raw.decode(errors="replace"))
                    if match:
                        self.ready_match = match
                        self._seen.set()

    def _is_ready(self, client: httpx.Client) -> bool:
        if self.ready_line is not None:
            return self._seen.wait(0.2)
        assert self.health_url is not None
        try:
            return client.get(self.health_url).status_code == 200
        except httpx.TransportError:
            return False  # not listening yet

    def wait_ready(self) -> None:
        assert self.popen is not None
        if self.health_url is None and self.ready_line is None:
            return
        deadline = self._spawned_at + self.ready_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while not self._is_ready(client):
                if self.popen.poll() is not None:
                    if self._reader is not None:
                        self._reader.join(5)  # the last lines it wrote belong in the message
                    raise ProcessError(f"{self.name} exited with code {self.popen.returncode} before it was"
                                       f" ready; log tail:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    where = f" on {self.health_url}" if self.health_url else ""
                    raise ProcessError(f"{self.name} not ready after {self.ready_timeout_s:.0f} s{where};"
                                       f" log tail:\n{self.log_tail()}")
                if self.ready_line is None:
                    time.sleep(0.1)
        self.ready_s = time.monotonic() - self._spawned_at

    def start(self) -> None:
        self.spawn()
        self.wait_ready()

    def signal_group(self, sig: int) -> None:
        if self.popen is not None:
            try:
                os.killpg(self.popen.pid, sig)
            except ProcessLookupError:
                pass  # the whole group is gone already

    def wait(self, timeout_s: float | None = None) -> int | None:
        """The exit code, or None when it still runs after ``timeout_s``. Once it has exited,
        everything it printed is in the log (the reader thread has copied the pipe's rest)."""
        assert self.popen is not None
        try:
            code = self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
        if self._reader is not None:
            self._reader.join(5)  # bounded: a child that kept the pipe open must not hang a test
        return code

    def stop(self) -> None:
        """``stop_signal`` to the group, SIGKILL after ``stop_timeout_s``; no member survives."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.signal_group(self.stop_signal)
            if self.wait(self.stop_timeout_s) is None:
                self.signal_group(signal.SIGKILL)
                self.popen.wait()
        # Helpers the process started share its group; none may outlive the test.
        self.signal_group(signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(5)
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def close(self) -> None:
        self.stop()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)
