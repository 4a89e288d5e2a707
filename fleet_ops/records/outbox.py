"""The station's outbox: records waiting for the shared records server.

A station that writes to PostgreSQL (``TINYOPS_RECORDS_URL=postgresql://…``) first puts
every record here, in a local SQLite file (WAL, ``synchronous=FULL``, like the local
records database), and only then sends it. Delivery takes the waiting records oldest first
inside one ``BEGIN IMMEDIATE`` transaction of this file, so two processes of one station
never send at the same time and the server receives them in the order the station made
them. A record leaves the outbox only after the server committed it; the server inserts by
the record's UUID and ignores one it already has, so a crash between the two commits sends
it again without making a duplicate: every record arrives exactly once.

No SQLite lock is held while the server is talked to (a hung server would otherwise block
every other process of the station from even queueing its record): one sender at a time is
ensured by a **lease** in the ``meta`` table (its owner and expiry, :data:`LEASE_S`, renewed
after every batch), taken and given back in short transactions; the records are read, sent
with no transaction open, then removed in another short one. A sender that dies leaves a
lease that expires; if it did not die but was merely slow, the server's ``ON CONFLICT``
still stores each record once.

A record the server refuses for its content (not for being unreachable) would block the
queue forever; it is set aside (``rejected``), logged and counted, never silently lost.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from device_drivers import paths
from device_drivers.errors import TinyOpsError

LEASE_S = 120.0
"""A sender's lease; longer than any bounded server round trip (``records_pg``)."""
RETRY_AFTER_S = 5.0
"""After a failed delivery, automatic attempts (one per new record) wait this long; an
explicit :meth:`Outbox.deliver` (``tinyops records``) always tries."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    uid      TEXT NOT NULL UNIQUE,
    payload  TEXT NOT NULL,
    rejected TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
"""

Send = Callable[[list[dict[str, Any]]], list[str]]
"""Sends records (oldest first) in one server transaction; returns the uids the server
refused for their content. Raises ``TinyOpsError`` when the server cannot be used."""


def outbox_path() -> Path:
    return paths.data_dir() / "records-outbox.sqlite"


class Outbox:
    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else outbox_path()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise TinyOpsError(f"cannot open the records outbox {self.path}: {exc}",
                               "check that the data directory is writable") from exc
        with closing(conn):
            conn.execute("PRAGMA busy_timeout=30000")
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            yield conn

    def put(self, uid: str, record: dict[str, Any]) -> int:
        """Keep ``record`` until it is delivered; returns its place in the queue."""
        payload = json.dumps(record, default=str, sort_keys=True)
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                cur = conn.execute("INSERT OR IGNORE INTO outbox (uid, payload) VALUES (?, ?)",
                                   (uid, payload))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return int(cur.lastrowid or 0)

    def pending_count(self) -> int:
        """Records waiting for the server (those it refused are not counted)."""
        if not self.path.exists():
            return 0
        with self._connect() as conn:
            return int(conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE rejected IS NULL").fetchone()[0])

    def holds(self, uid: str) -> bool:
        """Whether the record ``uid`` still waits here."""
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM outbox WHERE uid = ?", (uid,)).fetchone() \
                is not None

    def rejected(self) -> list[tuple[str, str]]:
        """(uid, reason) of records the server refused for their content."""
        if not self.path.exists():
            return []
        with self._connect() as conn:
            return list(conn.execute(
                "SELECT uid, rejected FROM outbox WHERE rejected IS NOT NULL ORDER BY seq"))

    def due(self) -> bool:
        """False while an automatic attempt would repeat a recent failure."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='retry_after'").fetchone()
        return row is None or time.time() >= float(row[0])

    def _lease(self, token: str, take: bool) -> bool:
        """Take (or renew) the sender's lease for ``token``, or give it back."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute("SELECT value FROM meta WHERE key='sender'").fetchone()
                owner, _, until = (row[0] if row else "").partition(" ")
                free = not row or owner == token or time.time() >= float(until or 0)
                if take and free:
                    conn.execute("INSERT OR REPLACE INTO meta VALUES ('sender', ?)",
                                 (f"{token} {time.time() + LEASE_S}",))
                elif not take and owner == token:
                    conn.execute("DELETE FROM meta WHERE key='sender'")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return free

    def sending(self) -> bool:
        """Whether another sender holds the lease now."""
        with self._connect() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key='sender'").fetchone()
        return bool(row) and time.time() < float(row[0].partition(" ")[2] or 0)

    def deliver(self, send: Send, batch: int = 200, wait_s: float = 0.0) -> int:
        """Send every waiting record, oldest first; returns how many were delivered (0 when
        another process of the station is sending and does not finish within ``wait_s``).

        Raises the ``TinyOpsError`` of ``send`` after what was sent before it is removed."""
        token = uuid.uuid4().hex
        deadline = time.monotonic() + wait_s
        while not self._lease(token, take=True):
            if time.monotonic() >= deadline:
                return 0
            time.sleep(0.1)
        delivered = 0
        try:
            while True:
                with self._connect() as conn:
                    rows = conn.execute(
                        "SELECT seq, uid, payload FROM outbox WHERE rejected IS NULL "
                        "ORDER BY seq LIMIT ?", (batch,)).fetchall()
                if not rows:
                    break
                try:
                    refused = set(send([json.loads(p) for _, _, p in rows]))  # no lock held
                except TinyOpsError:
                    with self._connect() as conn:
                        conn.execute("INSERT OR REPLACE INTO meta VALUES ('retry_after', ?)",
                                     (str(time.time() + RETRY_AFTER_S),))
                    raise
                with self._connect() as conn:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        for seq, uid, _ in rows:
                            if uid in refused:
                                conn.execute("UPDATE outbox SET rejected = ? WHERE seq = ?",
                                             ("refused by the server", seq))
                            else:
                                conn.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                                delivered += 1
                        conn.execute("COMMIT")  # the server already committed: remove them
                    except BaseException:
                        conn.execute("ROLLBACK")
                        raise
                self._lease(token, take=True)  # renew
            with self._connect() as conn:
                conn.execute("DELETE FROM meta WHERE key='retry_after'")
        finally:
            self._lease(token, take=False)
        return delivered
