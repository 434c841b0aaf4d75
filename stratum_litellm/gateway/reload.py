"""Live reload: an edit to the settings file takes effect within seconds, no restart.

A daemon thread looks at the file's modification time and size every ``interval_s`` (and at
those of the files the settings name, such as the scoring profile: a profile rewritten by
``stratum fit --out`` reloads too); on a change it validates the whole file and hands the
new settings over. Any edit that cannot be put in force (an invalid value, a file gone
or cut short mid-write, a rule that does not import, an error no one expected) is refused
the same way: logged, handed to ``on_error`` (counted), and the last good settings stay in
force. Keys that only take effect at start are named when an edit changes them
(:func:`restart_needed`). Nothing here touches the request path: the router swaps one
reference when it accepts new settings.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

from ..config import SettingsError, StratumSettings, load_settings

logger = logging.getLogger("stratum_litellm.gateway.reload")


class ConfigWatcher:
    def __init__(
        self,
        path: str | os.PathLike[str],
        on_settings: Callable[[StratumSettings], None],
        on_error: Callable[[str], None] | None = None,
        interval_s: float = 2.0,
        also: Callable[[], list[Path]] | None = None,
    ) -> None:
        self.path = Path(path)
        #: The other files the settings in force read (looked up at each look).
        self._also = also or (lambda: [])
        self._on_settings = on_settings
        self._on_error = on_error
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen = self._stamp()
        #: How long the thread's current wait between two looks is (None: not waiting).
        self.waiting_s: float | None = None

    def _stamp(self) -> tuple[tuple[int, int] | None, ...] | None:
        main = _stamp(self.path)
        if main is None:
            return None
        try:
            others = tuple(_stamp(path) for path in self._also())
        except Exception:  # noqa: BLE001 - the settings' own reading of its files is the judge
            others = ()
        return (main, *others)

    def check_once(self) -> bool | None:
        """Reload if the file changed: True accepted, False refused, None unchanged."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        self._seen = stamp
        try:
            settings = load_settings(self.path)
            self._on_settings(settings)
        except Exception as exc:  # noqa: BLE001 - whatever it was, the running settings stay
            # SettingsError: a bad value or an unreadable file; ValueError: a rule the router
            # cannot build (a python_rules import); anything else is reported alike.
            message = str(exc) if isinstance(exc, (SettingsError, ValueError)) else \
                f"{self.path}: unexpected {type(exc).__name__} while applying the edit: {exc}"
            logger.error("stratum: refused the edited settings, keeping the last good ones: %s", message)
            if self._on_error is not None:
                self._on_error(message)
            return False
        logger.info("stratum: settings reloaded from %s", self.path)
        return True

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="stratum-config-watch", daemon=True)
        self._thread.start()

    @property
    def interval_s(self) -> float:
        return self._interval_s

    def configure(self, interval_s: float) -> None:
        """Look at the file every ``interval_s`` from the next look on (a reload may change it)."""
        self._interval_s = interval_s

    def stop(self) -> None:
        """Stop watching. Safe from the watcher's own thread (an edit that turns reload off):
        it then ends after the current look instead of waiting for itself."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self._interval_s + 1.0)
        self._thread = None

    def _run(self) -> None:
        while True:
            self.waiting_s = self._interval_s
            if self._stop.wait(self._interval_s):
                break
            self.waiting_s = None
            try:
                self.check_once()
            except Exception:  # the watcher must outlive any surprise (check_once reports its own)
                logger.exception("stratum: settings watcher error")
        self.waiting_s = None


#: Settings read once, at start: an edit of one is named in the log as needing a restart.
RESTART_KEYS = (("shared_state", "mode"), ("learning", "store", "path"))


def keep_start_values(running: StratumSettings, edited: StratumSettings) -> tuple[StratumSettings, list[str]]:
    """``edited`` with the running values of the keys read only at start, and the keys the
    edit changed among them (named in the log: they take effect at the next start)."""
    changed = []
    for path in RESTART_KEYS:
        old, new = running, edited
        for part in path:
            old, new = getattr(old, part), getattr(new, part)
        if old != new:
            changed.append(".".join(path))
            edited = _replaced(edited, path, old)
    return edited, changed


def _replaced(model: Any, path: tuple[str, ...], value: Any) -> Any:
    inner = value if len(path) == 1 else _replaced(getattr(model, path[0]), path[1:], value)
    return model.model_copy(update={path[0]: inner})


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size)
