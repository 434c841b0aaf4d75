"""HTTP GET of a backend's status pages, bounded in time and size.

Everything a backend says reaches the readers as a :class:`Reply` (any HTTP status) or a
:class:`FetchError` (nothing usable came back: refused, timed out, too big, too slow).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Union

import httpx

from .load import BackendTarget

#: No backend reply is read beyond this many (decoded) bytes: a misconfigured URL pointing
#: at a file server or a log stream must not cost memory.
MAX_BODY_BYTES = 1 << 20


class FetchError(Exception):
    """A request failed in a way that says the backend is unreachable or broken."""


@dataclass(frozen=True, slots=True)
class Reply:
    """What one GET came back with, whatever its HTTP status."""

    path: str
    status: int
    body: bytes

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


#: The outcome of a GET whose failure is not fatal to a reading (see ``reading.usable``).
Answer = Union[Reply, FetchError]


class Fetcher:
    """One pooled HTTP client for every target, created on first use, closed by :meth:`close`.

    Not thread-safe: the poller calls it under its poll lock.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._client: httpx.Client | None = None

    def get(self, target: BackendTarget, path: str) -> Reply:
        """GET ``path`` of ``target``; transport trouble, a too slow or too big reply raise
        :class:`FetchError` naming the path."""
        headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else None
        # The per-phase timeout does not bound a server that trickles bytes; this does.
        deadline = time.monotonic() + 2.0 * self._timeout_s
        try:
            with self._http().stream("GET", target.url + path, headers=headers) as response:
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > MAX_BODY_BYTES:
                        raise FetchError(f"GET {path}: reply larger than {MAX_BODY_BYTES} bytes")
                    if time.monotonic() > deadline:
                        raise FetchError(f"GET {path}: reply too slow (over {2.0 * self._timeout_s:.1f}s)")
                    chunks.append(chunk)
                return Reply(path, response.status_code, b"".join(chunks))
        except httpx.TimeoutException:
            raise FetchError(f"GET {path}: timed out after {self._timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise FetchError(f"GET {path}: {type(exc).__name__}: {exc}") from None

    def attempt(self, target: BackendTarget, path: str) -> Answer:
        """:meth:`get`, with a failure returned instead of raised (for secondary readings)."""
        try:
            return self.get(target, path)
        except FetchError as exc:
            return exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _http(self) -> httpx.Client:
        if self._client is None:
            self._client = httpx.Client(
                timeout=httpx.Timeout(self._timeout_s),
                follow_redirects=True,  # some /metrics mounts redirect to /metrics/
                max_redirects=3,
                headers={"User-Agent": "stratum-litellm-backend-poller"},
            )
        return self._client
