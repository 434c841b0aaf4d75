"""``TcpRelay``: forwards a free loopback port to a server until ``cut()``, which drops every
connection through it and refuses new ones. A client that reaches the server through the
relay then loses it while every other client keeps it: one gateway replica cut off from the
Redis its fleet shares, the rest untouched.
"""

from __future__ import annotations

import socket
import threading

from process import Managed


class TcpRelay(Managed):
    """``with TcpRelay(host, port) as relay:`` point the client at ``relay.port``."""

    host = "127.0.0.1"

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = threading.Event()

    def start(self) -> None:
        self._listener = socket.create_server((self.host, 0))
        self._listener.settimeout(0.2)  # the accept loop sees cut() within this
        self.port = int(self._listener.getsockname()[1])
        threading.Thread(target=self._accept, args=(self._listener,), name="tcp-relay", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self._cut.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by cut()
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._cut.is_set():
                    _drop(client, upstream)
                    return
                self._open |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="tcp-relay-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the other side or cut() closed it
        finally:
            with self._lock:
                self._open -= {source, sink}
            _drop(source, sink)

    def cut(self) -> None:
        """Drop every connection and stop listening: the port refuses from now on."""
        self._cut.set()
        if self._listener is not None:
            self._listener.close()
        with self._lock:
            sockets, self._open = list(self._open), set()
        _drop(*sockets)

    def close(self) -> None:
        self.cut()


def _drop(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # not connected any more
        sock.close()
