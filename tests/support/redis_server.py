"""``RedisServer``: a real ``redis-server`` (Debian's package, installed by ``make redis``) on a
free loopback port, with nothing saved to disk, run as a ``ManagedProcess``.

Ready when it answers PING. ``pause()``/``resume()`` freeze and thaw it (SIGSTOP/SIGCONT: a
server that accepts connections but never answers), ``kill()`` SIGKILLs it, ``restart()``
starts an empty one on the same port, ``flush()`` empties it.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from process import Managed, ManagedProcess, ProcessError, start_on_a_free_port

BINARY = "/usr/bin/redis-server"
MISSING = f"{BINARY} is missing: run `make redis` (apt-get install redis-server)"


class RedisServer(Managed):
    """``with RedisServer() as r: redis.Redis.from_url(r.url)``."""

    host = "127.0.0.1"

    def __init__(self, *, ready_timeout_s: float = 10.0) -> None:
        self.ready_timeout_s = ready_timeout_s
        self.port = 0
        self.process: ManagedProcess | None = None
        self._dir: str | None = None  # its working directory; with --save '' nothing lands there

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    def client(self, **kwargs: Any) -> redis.Redis:
        """A sync client of this server; ``kwargs`` go to ``redis.Redis`` (socket_timeout=...).
        No retries unless ``retry=`` says otherwise: redis-py's default retries a timeout or a
        refused connection 3 times with up to seconds of backoff, hiding what a test provokes."""
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis(host=self.host, port=self.port, **kwargs)

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def log_tail(self, lines: int = 30) -> str:
        return self.process.log_tail(lines) if self.process else "(no log)"

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        if not Path(BINARY).is_file():
            raise ProcessError(MISSING)
        self._dir = self._dir or tempfile.mkdtemp(prefix="redis-server-")
        start_on_a_free_port(self, self._launch)

    def restart(self) -> None:
        """An empty server on the same port (after ``kill()``, or stopping the running one)."""
        self.stop()
        self._launch()

    def _launch(self) -> None:
        assert self._dir is not None
        cmd = [BINARY, "--save", "", "--appendonly", "no", "--bind", self.host, "--port", str(self.port),
               "--dir", self._dir]
        if self.process is not None:
            self.process.close()  # the log of the previous run
        self.process = ManagedProcess(cmd, name="redis-server", stop_timeout_s=5.0)
        self.process.spawn()
        deadline = time.monotonic() + self.ready_timeout_s
        with self.client(socket_timeout=1.0, socket_connect_timeout=1.0) as probe:
            while True:
                try:
                    if probe.ping():
                        return
                except redis.RedisError:
                    pass  # not listening yet
                if self.process.poll() is not None:
                    raise ProcessError(f"redis-server exited with code {self.process.returncode} before it"
                                       f" answered PING on port {self.port}; log tail:\n{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise ProcessError(f"redis-server did not answer PING on port {self.port} within"
                                       f" {self.ready_timeout_s:.0f} s; log tail:\n{self.log_tail()}")
                time.sleep(0.05)

    def flush(self) -> None:
        with self.client(socket_timeout=5.0) as c:
            c.flushall()

    def pause(self) -> None:
        """SIGSTOP: the port stays open, but nothing is answered until ``resume()``."""
        assert self.process is not None, "redis-server was never started"
        self.process.signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.signal_group(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL, and wait until it is gone: clients see the connection reset or refused."""
        assert self.process is not None, "redis-server was never started"
        self.process.signal_group(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None:
            self.resume()  # a stopped process only acts on SIGTERM once continued
            self.process.stop()

    def close(self) -> None:
        if self.process is not None:
            self.resume()
            self.process.close()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
