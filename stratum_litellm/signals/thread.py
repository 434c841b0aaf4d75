"""The daemon thread a poller runs in: started once, stopped and joined, restartable."""

from __future__ import annotations

import threading


class PollerThread:
    """Start/stop of one daemon thread running ``_run(stop_event)``.

    Each start gets a fresh stop event, so an old thread stuck in a call (a driver or a
    request) keeps its own, set, event and exits on its own when the call returns.
    """

    _thread_name = "stratum-poller"

    def __init__(self) -> None:
        self._lifecycle_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop_event = threading.Event()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._stop_event.is_set()

    def start(self) -> None:
        """Start the daemon thread; a no-op if it is already running."""
        with self._lifecycle_lock:
            if self.running:
                return
            self._stop_event = threading.Event()
            self._thread = threading.Thread(
                target=self._run, args=(self._stop_event,), name=self._thread_name, daemon=True
            )
            self._thread.start()

    def _stop_thread(self, timeout: float) -> bool:
        """Tell the thread to stop and join it; False if it is still running after ``timeout``."""
        with self._lifecycle_lock:
            thread = self._thread
            self._stop_event.set()
            self._on_stop_requested()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _on_stop_requested(self) -> None:
        """Called under the lifecycle lock when stop is asked (e.g. to cut a sleep short)."""

    def _run(self, stop: threading.Event) -> None:
        raise NotImplementedError
