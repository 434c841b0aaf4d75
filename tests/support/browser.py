"""Headless Chromium driven over the DevTools protocol, for tests that look at a page.

``Chromium`` starts Debian's ``/usr/bin/chromium`` (installed by
``scripts/stack/ensure_chromium.sh``, which ``make test`` runs) headless as a
``ManagedProcess``, with a fresh profile in a temp dir and everything that would reach the
network off. It is ready when it prints the DevTools port it bound
(``--remote-debugging-port=0``); the test talks to its page with ``websockets``: enough to
seed ``localStorage``, open a URL, wait until text is rendered and take a PNG screenshot.
Its process group (renderers, helpers) is killed on exit.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import httpx
from websockets.sync.client import ClientConnection, connect

from process import Managed, ManagedProcess, ProcessError

CHROMIUM = Path(os.environ.get("STRATUM_CHROMIUM", "/usr/bin/chromium"))

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0",
]
# What Chromium prints once its DevTools server listens (the port is the one it picked).
READY_LINE = r"DevTools listening on ws://[^:/]+:(\d+)/"


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a DevTools call failed."""


def missing_message(path: Path = CHROMIUM) -> str | None:
    if path.is_file() and os.access(path, os.X_OK):
        return None
    return (f"{path} is missing: the Open WebUI browser test needs headless Chromium. "
            "`make test` installs it (scripts/stack/ensure_chromium.sh: apt-get install chromium); "
            "run `bash scripts/stack/ensure_chromium.sh` before running this test by hand.")


class Chromium(Managed):
    def __init__(self, *, width: int = 1280, height: int = 900, executable: Path = CHROMIUM,
                 start_timeout_s: float = 60.0) -> None:
        self.width, self.height = width, height
        self.executable = executable
        self.start_timeout_s = start_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="stratum-chromium-")
        self.profile = Path(self._tmp.name) / "profile"
        self.process: ManagedProcess | None = None
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        problem = missing_message(self.executable)
        if problem:
            raise BrowserError(problem)
        args = [str(self.executable), *FLAGS, f"--user-data-dir={self.profile}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        self.process = ManagedProcess(args, name="chromium", ready_line=READY_LINE,
                                      ready_timeout_s=self.start_timeout_s,
                                      log_path=Path(self._tmp.name) / "chromium.log")
        try:
            self.process.start()
        except ProcessError as exc:
            raise BrowserError(str(exc)) from exc
        assert self.process.ready_match is not None
        page = self._page_target(int(self.process.ready_match.group(1)))
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30,
                          close_timeout=5)
        self.call("Page.enable")
        self.call("Runtime.enable")
        # The viewport, exactly: the screenshot is this size.
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def _log_tail(self) -> str:
        return self.process.log_tail() if self.process else ""

    def _page_target(self, port: int) -> dict[str, Any]:
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    return pages[0]
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise BrowserError("Chromium started but shows no page target:\n" + self._log_tail())
            time.sleep(0.2)

    def close(self) -> None:
        if self.ws is not None:
            try:
                self.ws.close()
            except Exception:
                pass
            self.ws = None
        if self.process is not None:
            self.process.stop()
        self._tmp.cleanup()

    # --- DevTools --------------------------------------------------------------------------
    def call(self, method: str, timeout_s: float = 60.0, **params: Any) -> dict[str, Any]:
        """One DevTools command; events that arrive meanwhile are dropped."""
        if self.ws is None:
            raise BrowserError("Chromium is not started")
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{method}: no answer in {timeout_s:.0f}s")
            try:
                reply = json.loads(self.ws.recv(timeout=left))
            except TimeoutError:
                continue
            if reply.get("id") != msg_id:
                continue
            if "error" in reply:
                raise BrowserError(f"{method}: {reply['error']}")
            return reply.get("result", {})

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=await_promise)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression[:80]}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def local_storage_on_load(self, origin: str, items: dict[str, str]) -> None:
        """Set ``items`` in ``origin``'s localStorage before any of its pages' scripts run."""
        sets = ";".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)})" for k, v in items.items())
        self.call("Page.addScriptToEvaluateOnNewDocument",
                  source=f"if (location.origin === {json.dumps(origin)}) {{ {sets}; }}")

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"opening {url}: {result['errorText']}")

    def text(self) -> str:
        """The page's rendered text (``innerText``: what is visible), whitespace collapsed."""
        value = self.evaluate("document.body ? document.body.innerText : ''") or ""
        return " ".join(str(value).split())

    def wait_for_text(self, needles: Iterable[str], timeout_s: float = 90.0) -> str:
        """Poll until every needle is in the rendered text; returns that text."""
        wanted = [" ".join(n.split()) for n in needles]
        deadline = time.monotonic() + timeout_s
        text = ""
        while True:
            text = self.text()
            missing = [n for n in wanted if n not in text]
            if not missing:
                break
            if time.monotonic() > deadline:
                raise BrowserError(f"after {timeout_s:.0f}s the page at {self.evaluate('location.href')} "
                                   f"still lacks {missing}; its text: {text[:2000]!r}")
            time.sleep(0.25)
        # Let web fonts and the frame that shows the text land before a screenshot.
        self.evaluate("document.fonts.ready.then(() => new Promise(r => requestAnimationFrame("
                      "() => requestAnimationFrame(() => r(true)))))", await_promise=True)
        return text

    def screenshot(self) -> bytes:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=False)["data"]
        return base64.b64decode(data)
