"""The local records file's schema: SQLite migrations (step ``n`` takes a database from
version ``n-1`` to ``n``, kept in ``PRAGMA user_version``) and WAL setup."""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from fleet_ops.records.uuid7 import uuid7

_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS records (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    time            TEXT NOT NULL,
    operation       TEXT NOT NULL,
    operator        TEXT,
    host            TEXT,
    port            TEXT,
    board           TEXT,
    usb_serial      TEXT,
    backend         TEXT,
    artifact        TEXT,
    artifact_sha256 TEXT,
    artifact_size   INTEGER,
    result          TEXT NOT NULL,
    verify          TEXT,
    error           TEXT,
    duration_s      REAL,
    details         TEXT
);
CREATE INDEX IF NOT EXISTS records_time ON records(time);
CREATE INDEX IF NOT EXISTS records_serial ON records(usb_serial);
"""


def _sqlite_v2(conn: sqlite3.Connection) -> None:
    """Version 2: a globally unique ``uid`` (UUIDv7) and the ``station`` on every record."""
    conn.execute("ALTER TABLE records ADD COLUMN uid TEXT")
    conn.execute("ALTER TABLE records ADD COLUMN station TEXT")
    for (rid,) in conn.execute("SELECT id FROM records WHERE uid IS NULL").fetchall():
        conn.execute("UPDATE records SET uid = ? WHERE id = ?", (str(uuid7()), rid))
    conn.execute("CREATE UNIQUE INDEX records_uid ON records(uid)")


SQLITE_MIGRATIONS: tuple[Any, ...] = (_SCHEMA_V1, _sqlite_v2)
SCHEMA_VERSION = len(SQLITE_MIGRATIONS)


def set_wal(conn: sqlite3.Connection, patience_s: float = 15.0) -> None:
    """Switch to WAL (persistent in the file). SQLite may answer "locked" at once instead of
    waiting while another process sets it up, so retry for a while."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migration steps, each in its own write transaction that first
    re-reads the version (another process may have just done it); returns the version
    found before."""
    found = int(conn.execute("PRAGMA user_version").fetchone()[0])
    for step in range(found + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] < step:
                migration = SQLITE_MIGRATIONS[step - 1]
                if isinstance(migration, str):
                    for statement in migration.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                else:
                    migration(conn)
                conn.execute(f"PRAGMA user_version={step}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return found
