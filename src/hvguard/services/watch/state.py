"""The watcher's state file (SQLite): last known definition of every VM and the notification outbox.

Why SQLite rather than a JSON file: a change must update one VM's row and queue its notifications in
one atomic, durable step (``synchronous=FULL``), and a host with a thousand VMs must not rewrite
megabytes per change.

Delivery is *at least once*, through a transactional outbox: when a change is detected, the VM's new
definition and one outbox row per notification channel are written in the same transaction. A delivery
thread per channel sends the oldest row of its channel and deletes it only when the channel accepted it
(HTTP 2xx, SMTP accepted, syslog written). So a crash, a SIGTERM, or a channel that is down never
loses a change: undelivered rows stay in the file and are retried, after a restart too. The price is a
possible duplicate (sent, then a crash before the delete): every payload carries a unique ``id`` so a
receiver can drop repeats.

The file holds VM definitions (console passwords replaced by keyed hashes, see ``canonical``) and the
random key of those hashes, so it is created mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA_VERSION = "1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS uris (uri TEXT PRIMARY KEY, baseline_at TEXT NOT NULL, last_sync_at TEXT);
CREATE TABLE IF NOT EXISTS domains (
    uri TEXT NOT NULL,
    uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    persistent INTEGER NOT NULL,
    config_xml TEXT,
    config_sha TEXT,
    live_id INTEGER,
    live_xml TEXT,
    live_sha TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (uri, uuid)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    channel TEXT NOT NULL,
    event_id TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_channel ON outbox (channel, id);
"""


class StateError(Exception):
    """The state file cannot be opened or is not an hvguard watch state; the message is one line."""


def now_iso() -> str:
    """Current UTC time, ISO 8601 with milliseconds and ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class DomainState:
    """What the watcher last saw of one VM. ``config_*`` is the persistent definition (None for a
    transient VM); ``live_*`` the running definition and ``live_id`` its run id (None when stopped)."""

    uuid: str
    name: str
    persistent: bool
    config_xml: str | None
    config_sha: str | None
    live_id: int | None
    live_xml: str | None
    live_sha: str | None


@dataclass(frozen=True)
class OutboxRow:
    """One undelivered notification for one channel."""

    id: int
    channel: str
    event_id: str
    payload: str
    attempts: int
    last_error: str | None


class Store:
    """The state file. Thread-safe: one connection, every operation under one lock, short transactions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)  # mode 0600 from the first byte
            os.close(fd)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(
                f"cannot open state file {path}: {getattr(exc, 'strerror', None) or exc}"
            ) from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            version = self._meta("schema")
            if version is None:
                self._db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
            elif version != SCHEMA_VERSION:
                raise StateError(
                    f"state file {path} has schema {version!r}; this hvguard reads {SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            self._db.close()
            raise StateError(f"state file {path} is not usable: {exc}") from exc
        except StateError:
            self._db.close()
            raise

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        """Checkpoint the WAL into the main file and close (the file is complete on its own)."""
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                self._db.close()

    # -- keys and URIs --------------------------------------------------------------------------------
    def secret_key(self) -> bytes:
        """The random key of the console-password hashes, created on first use."""
        with self._tx() as db:
            row = db.execute("SELECT value FROM meta WHERE key = 'password_hash_key'").fetchone()
            if row is not None:
                return bytes.fromhex(str(row[0]))
            key = secrets.token_bytes(32)
            db.execute("INSERT INTO meta VALUES ('password_hash_key', ?)", (key.hex(),))
            return key

    def has_baseline(self, uri: str) -> bool:
        """True once the VMs of ``uri`` have been recorded (so later differences are changes)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM uris WHERE uri = ?", (uri,)).fetchone()
        return row is not None

    def record_baseline(self, uri: str, states: Iterable[DomainState]) -> None:
        """Record the first view of ``uri`` without notifying (every VM is new to hvguard, not changed)."""
        stamp = now_iso()
        with self._tx() as db:
            db.execute("DELETE FROM domains WHERE uri = ?", (uri,))
            for s in states:
                self._upsert(db, uri, s, stamp)
            db.execute("INSERT OR REPLACE INTO uris VALUES (?, ?, ?)", (uri, stamp, stamp))

    def mark_synced(self, uri: str) -> None:
        """Note the time of the last complete resynchronisation of ``uri``."""
        with self._tx() as db:
            db.execute("UPDATE uris SET last_sync_at = ? WHERE uri = ?", (now_iso(), uri))

    # -- domains ---------------------------------------------------------------------------------------
    def domains(self, uri: str) -> dict[str, DomainState]:
        """Every VM recorded for ``uri``, by UUID."""
        with self._lock:
            rows = self._db.execute(
                "SELECT uuid, name, persistent, config_xml, config_sha, live_id, live_xml, live_sha "
                "FROM domains WHERE uri = ?",
                (uri,),
            ).fetchall()
        return {r[0]: DomainState(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows}

    def domain(self, uri: str, uuid: str) -> DomainState | None:
        """One recorded VM, or None."""
        with self._lock:
            r = self._db.execute(
                "SELECT uuid, name, persistent, config_xml, config_sha, live_id, live_xml, live_sha "
                "FROM domains WHERE uri = ? AND uuid = ?",
                (uri, uuid),
            ).fetchone()
        return None if r is None else DomainState(r[0], r[1], bool(r[2]), r[3], r[4], r[5], r[6], r[7])

    @staticmethod
    def _upsert(db: sqlite3.Connection, uri: str, s: DomainState, stamp: str) -> None:
        db.execute(
            "INSERT OR REPLACE INTO domains VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                uri,
                s.uuid,
                s.name,
                int(s.persistent),
                s.config_xml,
                s.config_sha,
                s.live_id,
                s.live_xml,
                s.live_sha,
                stamp,
            ),
        )

    def commit(
        self,
        uri: str,
        uuid: str,
        new: DomainState | None,
        notifications: Iterable[tuple[str, str, str]] = (),
    ) -> list[int]:
        """Atomically store the VM's new state (None: forget it) and queue ``(channel, event_id,
        payload_json)`` notifications. Returns the outbox row ids."""
        stamp = now_iso()
        ids: list[int] = []
        with self._tx() as db:
            if new is None:
                db.execute("DELETE FROM domains WHERE uri = ? AND uuid = ?", (uri, uuid))
            else:
                self._upsert(db, uri, new, stamp)
            for channel, event_id, payload in notifications:
                cur = db.execute(
                    "INSERT INTO outbox (channel, event_id, payload, created_at) VALUES (?, ?, ?, ?)",
                    (channel, event_id, payload, stamp),
                )
                ids.append(int(cur.lastrowid or 0))
        return ids

    # -- outbox ----------------------------------------------------------------------------------------
    def outbox_head(self, channel: str) -> OutboxRow | None:
        """The oldest undelivered notification of ``channel``."""
        with self._lock:
            r = self._db.execute(
                "SELECT id, channel, event_id, payload, attempts, last_error FROM outbox "
                "WHERE channel = ? ORDER BY id LIMIT 1",
                (channel,),
            ).fetchone()
        return None if r is None else OutboxRow(r[0], r[1], r[2], r[3], r[4], r[5])

    def delivered(self, row_id: int) -> None:
        """The channel accepted the notification: remove it."""
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def failed(self, row_id: int, error: str) -> None:
        """A delivery attempt failed: count it and keep the reason."""
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error, row_id)
            )

    def pending(self) -> dict[str, int]:
        """Undelivered notifications per channel."""
        with self._lock:
            rows = self._db.execute("SELECT channel, COUNT(*) FROM outbox GROUP BY channel").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    def trim(self, channel: str, keep: int) -> list[str]:
        """Drop the oldest rows of ``channel`` beyond ``keep``; return the event ids dropped."""
        with self._tx() as db:
            rows = db.execute(
                "SELECT id, event_id FROM outbox WHERE channel = ? ORDER BY id DESC LIMIT -1 OFFSET ?",
                (channel, keep),
            ).fetchall()
            db.executemany("DELETE FROM outbox WHERE id = ?", [(r[0],) for r in rows])
        return [str(r[1]) for r in rows]
