"""Headless Chromium driven over the DevTools protocol, for tests that look at a page.

``Chromium`` starts Debian's ``/usr/bin/chromium`` (installed by
``scripts/ensure_chromium.sh``, which ``make test`` runs) headless, with a fresh profile
in a temp dir and everything that would reach the network off, finds its page through
``--remote-debugging-port=0`` and talks to it with ``websockets``: enough to seed
``localStorage``, open a URL, wait until text is rendered and take a PNG screenshot. It
runs in a process group of its own, killed on exit.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

import httpx
from websockets.sync.client import ClientConnection, connect

from lifecycle import Managed

CHROMIUM = Path(os.environ.get("STRATUM_CHROMIUM", "/usr/bin/chromium"))

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
    "--hide-scrollbars", "--mute-audio", "--remote-debugging-port=0",
]


class BrowserError(RuntimeError):
    """Chromium is missing, did not start, or a DevTools call failed."""


def missing_message(path: Path = CHROMIUM) -> str | None:
    if path.is_file() and os.access(path, os.X_OK):
        return None
    return (f"{path} is missing: the Open WebUI browser test needs headless Chromium. "
            "`make test` installs it (scripts/ensure_chromium.sh: apt-get install chromium); "
            "run `bash scripts/ensure_chromium.sh` before running this test by hand.")


class Chromium(Managed):
    def __init__(self, *, width: int = 1280, height: int = 900, executable: Path = CHROMIUM,
                 start_timeout_s: float = 60.0) -> None:
        self.width, self.height = width, height
        self.executable = executable
        self.start_timeout_s = start_timeout_s
        self._tmp = tempfile.TemporaryDirectory(prefix="stratum-chromium-")
        self.profile = Path(self._tmp.name) / "profile"
        self.log = Path(self._tmp.name) / "chromium.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.ws: ClientConnection | None = None
        self._ids = itertools.count(1)

    # --- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        problem = missing_message(self.executable)
        if problem:
            raise BrowserError(problem)
        args = [str(self.executable), *FLAGS, f"--user-data-dir={self.profile}",
                f"--window-size={self.width},{self.height}", "about:blank"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        port = self._devtools_port()
        page = self._page_target(port)
        self.ws = connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=30,
                          close_timeout=5)
        self.call("Page.enable")
        self.call("Runtime.enable")
        # The viewport, exactly: the screenshot is this size.
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                  deviceScaleFactor=1, mobile=False)

    def _log_tail(self) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def _devtools_port(self) -> int:
        # Chromium writes the port it bound into <profile>/DevToolsActivePort.
        assert self.process is not None
        marker = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(f"{self.executable} exited with {self.process.returncode} at start:\n"
                                   + self._log_tail())
            if marker.exists():
                first = marker.read_text().split("\n", 1)[0].strip()
                if first.isdigit():
                    return int(first)
            time.sleep(0.1)
        raise BrowserError(f"{self.executable} did not open its DevTools port in "
                           f"{self.start_timeout_s:.0f}s:\n" + self._log_tail())

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
        if self.process is not None and self.process.poll() is None:
            for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(wait_s)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.process is not None:
            # Renderers and helpers share the group; none may outlive the test.
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
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
