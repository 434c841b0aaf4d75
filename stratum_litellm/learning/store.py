"""The label store: one SQLite file the operator controls.

Two tables:

- ``labels``: one row per labelled answer (``ref`` unique: a newer label of the same answer
  replaces the older), with what a refit needs: the request's features (its dimension
  levels and the hashes of its words, :class:`~.example.Example`), the verdict and its
  weight, where it came from, the tier that served it and its score then. No text unless
  ``keep_text``; kept text is removed after ``text_retention_days``.
- ``decisions``: the router's decision for each answer Open WebUI asked for (its message
  id), kept ``decision_retention_days`` so that users' ratings can be joined to it later.

Several processes (the gateway's workers, the CLI) may use one file at once: WAL journal,
a busy timeout, short transactions. Each thread uses its own connection.

The hashes are one-way (CRC-32 of words and word pairs), not text, but common words can be
guessed from them with a dictionary: treat the file as you treat your gateway's logs.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import SettingsError, StratumSettings
from ..scoring import text as text_features
from ..scoring.profile import settings_folder
from .example import Example
from .labels import Label

__all__ = ["Decision", "Store", "StoreError", "open_store", "store_path"]

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS labels (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ref TEXT UNIQUE,
    created REAL NOT NULL,
    source TEXT NOT NULL,
    needs_strong INTEGER NOT NULL,
    weight REAL NOT NULL,
    tier TEXT,
    score REAL,
    profile TEXT,
    grade INTEGER,
    features TEXT NOT NULL,
    text TEXT
);
CREATE INDEX IF NOT EXISTS labels_created ON labels (created);
CREATE TABLE IF NOT EXISTS decisions (
    message_id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    chat_id TEXT,
    user_message_id TEXT,
    tier TEXT NOT NULL,
    first_tier INTEGER NOT NULL,
    score REAL,
    profile TEXT,
    features TEXT NOT NULL,
    text TEXT
);
CREATE INDEX IF NOT EXISTS decisions_turn ON decisions (chat_id, user_message_id);
CREATE INDEX IF NOT EXISTS decisions_created ON decisions (created);
"""
_DAY = 86_400.0


class StoreError(Exception):
    """The store cannot be opened or used (the message names the file)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The router's decision for one answer Open WebUI asked for."""

    message_id: str
    tier: str
    #: Served by the first tier (the one whose answers labels judge).
    first_tier: bool
    example: Example
    chat_id: str | None = None
    user_message_id: str | None = None
    score: float | None = None
    profile: str | None = None
    created: float = 0.0


class Store:
    def __init__(self, path: str | Path, keep_text: bool = False, text_retention_days: float = 30.0,
                 decision_retention_days: float = 30.0) -> None:
        self.path = Path(path)
        self.keep_text = keep_text
        self.text_retention_days = text_retention_days
        self.decision_retention_days = decision_retention_days
        self._local = threading.local()
        self._connect()  # fail now, with the file's name, rather than at the first label

    # -- connections

    def _connect(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 10000")
            _wal(connection)
            connection.execute("PRAGMA synchronous = NORMAL")
            with _transaction(connection):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                found = connection.execute("SELECT value FROM info WHERE key = 'schema'").fetchone()
                if found is None:
                    connection.execute("INSERT INTO info VALUES ('schema', ?), ('features', ?)",
                                       (str(SCHEMA_VERSION), text_features.FEATURES))
                elif found[0] != str(SCHEMA_VERSION):
                    raise StoreError(f"label store {self.path}: schema {found[0]}, this version reads {SCHEMA_VERSION}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the label store {self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"cannot open the label store {self.path}: {exc.strerror or exc}") from None
        self._local.connection = connection
        return connection

    def close(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    # -- labels

    def add(self, labels: Iterable[Label]) -> int:
        """Add labels (a newer label of the same ``ref`` replaces the older); returns how many."""
        rows = [self._label_row(label) for label in labels]
        if not rows:
            return 0
        connection = self._connect()
        with _transaction(connection):
            connection.executemany(
                "INSERT INTO labels (ref, created, source, needs_strong, weight, tier, score, profile, grade, "
                "features, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (ref) DO UPDATE SET "
                "created = excluded.created, source = excluded.source, needs_strong = excluded.needs_strong, "
                "weight = excluded.weight, tier = excluded.tier, score = excluded.score, "
                "profile = excluded.profile, grade = excluded.grade, features = excluded.features, "
                "text = excluded.text", rows)
        return len(rows)

    def _label_row(self, label: Label) -> tuple[Any, ...]:
        text = label.example.text if self.keep_text else None
        return (label.ref, label.created or time.time(), label.source, int(label.needs_strong), label.weight,
                label.tier, label.score, label.profile, label.grade, label.example.features_json(), text)

    def labels(self, sources: Sequence[str] | None = None, since: float | None = None,
               limit: int | None = None) -> list[Label]:
        """Stored labels, oldest first (``limit``: the newest ones)."""
        where, args = [], []
        if sources:
            where.append(f"source IN ({', '.join('?' * len(sources))})")
            args.extend(sources)
        if since is not None:
            where.append("created > ?")
            args.append(since)
        sql = ("SELECT ref, created, source, needs_strong, weight, tier, score, profile, grade, features, text "
               "FROM labels" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created DESC, id DESC")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        rows = self._connect().execute(sql, args).fetchall()
        found = []
        for ref, created, source, needs, weight, tier, score, profile, grade, features, text in reversed(rows):
            found.append(Label(Example.from_features_json(features, text), bool(needs), source, weight, ref=ref,
                               tier=tier, score=score, profile=profile, grade=grade, created=created))
        return found

    def stats(self) -> dict[str, Any]:
        connection = self._connect()
        by = connection.execute(
            "SELECT source, needs_strong, COUNT(*), MIN(created), MAX(created) FROM labels "
            "GROUP BY source, needs_strong ORDER BY source, needs_strong").fetchall()
        texts = connection.execute("SELECT COUNT(*) FROM labels WHERE text IS NOT NULL").fetchone()[0]
        decisions = connection.execute("SELECT COUNT(*), MIN(created), MAX(created) FROM decisions").fetchone()
        return {
            "path": str(self.path),
            "labels": sum(row[2] for row in by),
            "by": [{"source": s, "needs_strong": bool(n), "count": c, "first": a, "last": b} for s, n, c, a, b in by],
            "with_text": texts,
            "decisions": decisions[0],
            "decisions_first": decisions[1],
            "decisions_last": decisions[2],
        }

    def purge(self, older_than_days: float | None = None, source: str | None = None) -> int:
        """Delete labels (all, or older than, or of one source); returns how many."""
        where, args = [], []
        if older_than_days is not None:
            where.append("created < ?")
            args.append(time.time() - older_than_days * _DAY)
        if source is not None:
            where.append("source = ?")
            args.append(source)
        connection = self._connect()
        with _transaction(connection):
            cursor = connection.execute("DELETE FROM labels" + (" WHERE " + " AND ".join(where) if where else ""), args)
            if older_than_days is None and source is None:
                connection.execute("DELETE FROM decisions")
            elif older_than_days is not None and source is None:
                connection.execute("DELETE FROM decisions WHERE created < ?", (args[0],))
        return cursor.rowcount

    def expire(self, now: float | None = None) -> tuple[int, int]:
        """Apply the retention periods: (texts removed, decisions removed)."""
        now = time.time() if now is None else now
        connection = self._connect()
        with _transaction(connection):
            texts = connection.execute("UPDATE labels SET text = NULL WHERE text IS NOT NULL AND created < ?",
                                       (now - self.text_retention_days * _DAY,)).rowcount
            connection.execute("UPDATE decisions SET text = NULL WHERE text IS NOT NULL AND created < ?",
                               (now - self.text_retention_days * _DAY,))
            decisions = connection.execute("DELETE FROM decisions WHERE created < ?",
                                           (now - self.decision_retention_days * _DAY,)).rowcount
        return texts, decisions

    # -- decisions (for joining Open WebUI ratings)

    def record(self, decisions: Iterable[Decision]) -> int:
        rows = [(d.message_id, d.created or time.time(), d.chat_id, d.user_message_id, d.tier, int(d.first_tier),
                 d.score, d.profile, d.example.features_json(), d.example.text if self.keep_text else None)
                for d in decisions]
        if not rows:
            return 0
        connection = self._connect()
        with _transaction(connection):
            connection.executemany(
                "INSERT OR REPLACE INTO decisions (message_id, created, chat_id, user_message_id, tier, first_tier, "
                "score, profile, features, text) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def decisions(self, message_ids: Sequence[str] | None = None) -> list[Decision]:
        """Recorded decisions, oldest first (all, or those of these message ids)."""
        sql = ("SELECT message_id, created, chat_id, user_message_id, tier, first_tier, score, profile, features, text "
               "FROM decisions")
        connection = self._connect()
        if message_ids is None:
            rows = connection.execute(sql + " ORDER BY created").fetchall()
        else:
            rows = []
            ids = list(message_ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                rows += connection.execute(sql + f" WHERE message_id IN ({', '.join('?' * len(chunk))})", chunk).fetchall()
            rows.sort(key=lambda row: row[1])
        return [Decision(m, tier, bool(first), Example.from_features_json(features, text), chat, user, score, profile,
                         created)
                for m, created, chat, user, tier, first, score, profile, features, text in rows]


def _wal(connection: sqlite3.Connection, timeout_s: float = 10.0) -> None:
    """Switch to the WAL journal. Several processes opening a new file at once (a gateway's
    workers at their first start) can find it locked: SQLite does not wait the busy timeout
    for this step, so it is tried again until the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class _transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error): takes the write lock at once, so a
    busy file waits the busy timeout instead of failing half-way."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def __enter__(self) -> sqlite3.Connection:
        self.connection.execute("BEGIN IMMEDIATE")
        return self.connection

    def __exit__(self, kind: Any, value: Any, traceback: Any) -> None:
        self.connection.execute("COMMIT" if kind is None else "ROLLBACK")


def store_path(settings: StratumSettings, source: str) -> Path:
    """The label store's file: ``learning.store.path``, relative to the settings file."""
    path = Path(os.path.expanduser(settings.learning.store.path))
    folder = settings_folder(source)
    return path if path.is_absolute() or folder is None else Path(folder) / path


def open_store(settings: StratumSettings, source: str) -> Store:
    """The label store the settings name, opened (a bad path is a settings error)."""
    store = settings.learning.store
    try:
        return Store(store_path(settings, source), store.keep_text, store.text_retention_days,
                     store.decision_retention_days)
    except StoreError as exc:
        raise SettingsError(f"invalid stratum settings in {source}:\n  learning.store.path: {exc}") from None
