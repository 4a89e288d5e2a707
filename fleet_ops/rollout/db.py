"""The rollout database's plumbing: one connection per back end (SQLite records file or
PostgreSQL), transactions retried while the database is away, and the holder lock.

Holding a rollout (:class:`Hold`): on PostgreSQL a session advisory lock
(``pg_try_advisory_lock``) on a connection of its own, re-taken after a reconnection; on
SQLite a lease row renewed every :data:`LEASE_RENEW_S`. A second holder gets
:class:`RolloutHeld` naming the first (``host:pid since …``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from device_drivers.errors import TinyOpsError
from fleet_ops.records import pg as records_pg
from fleet_ops.records.sqlite import set_wal
from fleet_ops.rollout.plan import now_iso

log = logging.getLogger(__name__)
T = TypeVar("T")
Query = Callable[..., list[tuple[Any, ...]]]

PATIENCE_S = 180.0
"""How long a transaction waits for a database that went away before giving up."""
LEASE_S = 15.0
LEASE_RENEW_S = 3.0


class RolloutHeld(TinyOpsError):
    """Another orchestrator holds this rollout."""

    def __init__(self, rollout_id: str, holder: str) -> None:
        self.holder = holder
        super().__init__(f"rollout {rollout_id} is held by {holder}",
                         "wait for it to finish, or stop that process; a holder that died "
                         "lets go by itself")


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()} since {now_iso()}"


class _Db:
    """One connection, used under a lock; ``?`` placeholders on both back ends."""

    pg = False

    def __init__(self, target: str) -> None:
        self.target = target
        self.lock = threading.RLock()
        self.conn: Any = None

    def connect(self) -> Any:
        conn = sqlite3.connect(self.target, timeout=15.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=15000")
        set_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def sql(self, text: str) -> str:
        return text

    def begin(self) -> str:
        return "BEGIN IMMEDIATE"

    def transient(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)

    def describe(self) -> str:
        return self.target

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self.conn is not None:
                self.conn.close()
        self.conn = None

    def run(self, fn: Callable[[Query], T]) -> T:
        """``fn(q)`` in one committed transaction, retried (reconnecting) while the database
        is away, for at most :data:`PATIENCE_S`."""
        deadline = time.monotonic() + PATIENCE_S
        delay = 0.2
        while True:
            with self.lock:
                try:
                    if self.conn is None:
                        self.conn = self.connect()
                    conn = self.conn

                    def q(text: str, params: tuple[Any, ...] = (),
                          conn: Any = conn) -> list[tuple[Any, ...]]:
                        cur = conn.execute(self.sql(text), params)
                        return list(cur.fetchall()) if cur.description else []

                    conn.execute(self.begin())
                    try:
                        result = fn(q)
                        conn.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(Exception):
                            conn.execute("ROLLBACK")
                        raise
                    return result
                except Exception as exc:
                    if not self.transient(exc):
                        raise
                    if self.pg:
                        self.close()
                    if time.monotonic() + delay > deadline:
                        said = records_pg.redact(str(exc), self.target).splitlines()
                        raise TinyOpsError(f"the rollout database ({self.describe()}) is "
                                           f"unavailable: {said[0] if said else exc!r}",
                                           "start it again, then `tinyops rollout resume ID`") \
                            from None
                    log.warning("rollout database away (%s); retrying in %.1f s",
                                type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class _PgDb(_Db):
    pg = True

    def connect(self) -> Any:
        import psycopg

        return psycopg.connect(self.target, autocommit=True, **records_pg.CONNECT_OPTIONS)

    def sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def begin(self) -> str:
        return "BEGIN"

    def transient(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))

    def describe(self) -> str:
        return records_pg.describe(self.target)


def dead_here(holder: str) -> bool:
    """The holder ``host:pid since …`` is a process of this host that no longer runs (its
    lease need not run out: a killed orchestrator restarted at once takes over)."""
    host, _, rest = holder.partition(":")
    pid = rest.split(" ", 1)[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def lock_key(rollout_id: str) -> int:
    return int.from_bytes(hashlib.sha256(b"tinyops-rollout:" + rollout_id.encode()).digest()[:8],
                          "big", signed=True)


class Hold:
    """The right to run one rollout (a context manager); :meth:`check` raises
    :class:`RolloutHeld` when it was lost to another holder."""

    def __init__(self, db: _Db, rollout_id: str, holder: str) -> None:
        self.db, self.rollout_id, self.holder = db, rollout_id, holder
        self._stop = threading.Event()
        self._lost: RolloutHeld | None = None
        self._lock_db: _PgDb | None = None
        self._thread: threading.Thread | None = None

    # -- SQLite lease / PostgreSQL holder row
    def _claim(self, q: Query, force: bool) -> str | None:
        rows = q("SELECT holder, expires FROM rollout_holders WHERE rollout_id = ?",
                 (self.rollout_id,))
        if rows and rows[0][0] != self.holder and rows[0][1] > time.time() and not force \
                and not dead_here(str(rows[0][0])):
            return str(rows[0][0])
        q("DELETE FROM rollout_holders WHERE rollout_id = ?", (self.rollout_id,))
        q("INSERT INTO rollout_holders (rollout_id, holder, expires) VALUES (?, ?, ?)",
          (self.rollout_id, self.holder, time.time() + LEASE_S))
        return None

    def _pg_lock(self) -> bool:
        assert self._lock_db is not None
        key = lock_key(self.rollout_id)
        return bool(self._lock_db.run(
            lambda q: q("SELECT pg_try_advisory_lock(?)", (key,))[0][0]))

    def __enter__(self) -> Hold:
        db = self.db
        if db.pg:
            self._lock_db = _PgDb(db.target)
            if not self._pg_lock():
                rows = db.run(lambda q: q("SELECT holder FROM rollout_holders "
                                          "WHERE rollout_id = ?", (self.rollout_id,)))
                self._lock_db.close()
                raise RolloutHeld(self.rollout_id, rows[0][0] if rows else "another process")
            db.run(lambda q: self._claim(q, force=True))
        else:
            other = db.run(lambda q: self._claim(q, force=False))
            if other:
                raise RolloutHeld(self.rollout_id, other)
        self._thread = threading.Thread(target=self._renew, daemon=True,
                                        name=f"rollout-hold-{self.rollout_id[:8]}")
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(LEASE_RENEW_S):
            try:
                self._renew_once()
            except RolloutHeld as exc:
                self._lost = exc
                return
            except Exception as exc:  # database away: check() reports it when it matters
                log.warning("could not renew the hold on %s: %s", self.rollout_id, exc)

    def _renew_once(self) -> None:
        if self._lock_db is not None:
            try:
                with self._lock_db.lock:
                    self._lock_db.conn.execute("SELECT 1")
            except Exception:  # the session (and its lock) is gone: take it again
                self._lock_db.close()
                if not self._pg_lock():
                    raise RolloutHeld(self.rollout_id, "another process (lock lost)") from None
                self.db.run(lambda q: self._claim(q, force=True))
            return
        other = self.db.run(lambda q: self._claim(q, force=False))
        if other:
            raise RolloutHeld(self.rollout_id, other)

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(Exception):
            self.db.run(lambda q: q(
                "DELETE FROM rollout_holders WHERE rollout_id = ? AND holder = ?",
                (self.rollout_id, self.holder)))
        if self._lock_db is not None:
            self._lock_db.close()  # ends the session: the advisory lock goes with it
