"""The store's writer in the gateway: a daemon thread, so no request waits on SQLite.

The gateway hands it labels and decisions as they come (a bounded queue; when full an item
is dropped and counted, never waited for); the thread turns request bodies into features,
writes in batches, applies the retention periods, and every ``agreement.interval_s``
measures how well the profile in use ranks the newest labels.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..scoring.profile import Profile
from .example import Example
from .labels import Label
from .quality import auroc
from .settings import AgreementSettings
from .store import Decision, Store

logger = logging.getLogger("stratum_litellm")

__all__ = ["Agreement", "Pending", "StoreWriter"]

#: Sources whose labels say how the profile in use fares on the deployment's traffic.
LIVE_SOURCES = ("judge", "openwebui", "regeneration")
_QUEUE = 1_000
_BATCH = 200
_EXPIRE_EVERY_S = 3_600.0


@dataclass(frozen=True, slots=True)
class Pending:
    """A label or a decision whose features are still to be made from its request body."""

    body: Mapping[str, Any]
    label: Label | None = None
    decision: Decision | None = None


@dataclass(frozen=True, slots=True)
class Agreement:
    #: AUROC of the profile in use on the newest labels (None: too few, or one verdict only).
    auroc: float | None
    labels: int
    profile: str
    #: Labels in the store by source and verdict (``needs_strong``, ``first_enough``).
    counts: Mapping[tuple[str, str], int]


class StoreWriter:
    def __init__(self, open_store: Callable[[], Store], profile: Callable[[], Profile],
                 agreement: Callable[[], AgreementSettings], keep_text: Callable[[], bool],
                 on_dropped: Callable[[str], None] | None = None,
                 on_agreement: Callable[[Agreement], None] | None = None) -> None:
        self._open_store = open_store
        self._profile = profile
        self._settings = agreement
        self._keep_text = keep_text
        self._on_dropped = on_dropped
        self._on_agreement = on_agreement
        self._queue: queue.Queue[Pending | None] = queue.Queue(maxsize=_QUEUE)
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.agreement: Agreement | None = None
        self.written = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stratum-label-store", daemon=True)
            self._thread.start()

    def put(self, item: Pending) -> bool:
        """Queue an item; False (and counted) when the queue is full."""
        try:
            self._queue.put_nowait(item)
            return True
        except queue.Full:
            if self._on_dropped is not None:
                self._on_dropped("store_busy")
            return False

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything queued so far is written (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def stop(self, timeout_s: float = 10.0) -> None:
        """Write what is queued, then stop."""
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        thread.join(timeout=timeout_s)
        self._thread = None

    def measure(self, store: Store) -> Agreement:
        """How well the profile in use ranks the newest live labels."""
        settings, profile = self._settings(), self._profile()
        labels = store.labels(sources=LIVE_SOURCES, limit=settings.window)
        scores = [profile.logit(label.example.levels, label.example.hashes) for label in labels]
        needs = [label.needs_strong for label in labels]
        value = None
        if len(labels) >= settings.min_labels and any(needs) and not all(needs):
            found = auroc(scores, needs, [label.weight for label in labels])
            value = None if math.isnan(found) else found
        counts = {(row["source"], "needs_strong" if row["needs_strong"] else "first_enough"): row["count"]
                  for row in store.stats()["by"]}
        return Agreement(value, len(labels), profile.name, counts)

    # -- the thread

    def _run(self) -> None:
        store: Store | None = None
        next_measure = next_expire = 0.0
        while True:
            try:
                if store is None:
                    store = self._open_store()
                timeout = max(0.05, next_measure - time.monotonic()) if next_measure else 0.5
                batch = self._take(timeout)
                stop = any(item is None for item in batch)
                try:
                    self._write(store, [item for item in batch if item is not None])
                finally:
                    for _ in batch:
                        self._queue.task_done()
                now = time.monotonic()
                if now >= next_expire:
                    store.expire()
                    next_expire = now + _EXPIRE_EVERY_S
                if now >= next_measure:
                    self.agreement = self.measure(store)
                    if self._on_agreement is not None:
                        self._on_agreement(self.agreement)
                    next_measure = now + self._settings().interval_s
                if stop:
                    break
            except Exception:  # the writer must outlive any surprise; what it held is lost, counted
                logger.exception("stratum: label store writer error")
                if self._on_dropped is not None:
                    self._on_dropped("store_error")
                if self._stopping.is_set():
                    break
                time.sleep(1.0)
        if store is not None:
            store.close()

    def _take(self, timeout: float) -> list[Pending | None]:
        try:
            batch = [self._queue.get(timeout=timeout)]
        except queue.Empty:
            return []
        while len(batch) < _BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, store: Store, items: list[Pending]) -> None:
        if not items:
            return
        keep_text = self._keep_text()
        labels, decisions = [], []
        for item in items:
            example = Example.of_request(item.body, keep_text)
            if item.label is not None:
                labels.append(replace(item.label, example=example))
            if item.decision is not None:
                decisions.append(replace(item.decision, example=example))
        self.written += store.add(labels) + store.record(decisions)
