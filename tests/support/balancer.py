"""``Balancer``: a real HAProxy (Debian's package, installed by ``make haproxy``) in front of
several gateways, standing in for a Kubernetes Service: it sends each request to a gateway
whose readiness endpoint (``/health/readiness``) answers 200, checked every 500 ms (out
after 3 failures, back after 2 passes, as a kubelet's probes go).

``remove(i)`` takes gateway ``i`` out of rotation at once (what the endpoints controller
does when a pod starts terminating, alongside its preStop hook); ``add(i)`` puts it back,
and it takes requests again once its readiness checks pass. Each request gets a connection
of its own to a gateway, and nothing is retried: a client sees every error a gateway gives.
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path

from process import Managed, ManagedProcess, free_port

BINARY = "/usr/sbin/haproxy"
MISSING = f"{BINARY} is missing: run `make haproxy` (apt-get install haproxy)"


class Balancer(Managed):
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.port = 0
        self.process: ManagedProcess | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="stratum-haproxy-")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def _socket(self) -> Path:
        return Path(self._dir.name) / "admin.sock"

    def config(self) -> str:
        servers = "\n".join(f"    server g{i} 127.0.0.1:{port} check" for i, port in enumerate(self.ports))
        return f"""global
    stats socket {self._socket} mode 600 level admin

defaults
    mode http
    timeout connect 2s
    timeout check 3s
    timeout client 120s
    timeout server 120s
    retries 0
    option http-server-close

frontend gateway
    bind 127.0.0.1:{self.port}
    default_backend gateways

backend gateways
    balance roundrobin
    option httpchk GET /health/readiness
    http-check expect status 200
    default-server inter 500ms fall 3 rise 2
{servers}
"""

    def start(self) -> None:
        if not Path(BINARY).exists():
            raise FileNotFoundError(MISSING)
        self.port = free_port()
        path = Path(self._dir.name) / "haproxy.cfg"
        path.write_text(self.config())
        self.process = ManagedProcess([BINARY, "-db", "-f", str(path)], None, name="haproxy",
                                      ready_line=None, log_path=Path(self._dir.name) / "haproxy.log")
        self.process.start()
        deadline = time.monotonic() + 10
        while not self._listening():
            assert self.process.poll() is None, f"haproxy exited:\n{self.process.log_tail()}"
            assert time.monotonic() < deadline, f"haproxy not listening:\n{self.process.log_tail()}"
            time.sleep(0.05)

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def command(self, line: str) -> str:
        """One command on HAProxy's runtime API."""
        with socket.socket(socket.AF_UNIX) as s:
            s.connect(str(self._socket))
            s.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def remove(self, index: int) -> None:
        self.command(f"set server gateways/g{index} state maint")

    def add(self, index: int) -> None:
        self.command(f"set server gateways/g{index} state ready")

    def up(self, index: int) -> bool:
        """Whether gateway ``index`` takes requests (its checks pass and it is in rotation)."""
        for line in self.command("show servers state gateways").splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[3] == f"g{index}":
                return fields[5] == "2"  # srv_op_state 2: running
        return False

    def close(self) -> None:
        if self.process is not None:
            self.process.close()
        self._dir.cleanup()
