"""Shared provisioning records on PostgreSQL (psycopg 3), fed through the station's outbox.

``TINYOPS_RECORDS_URL=postgresql://user@host:port/dbname`` selects it; the password comes
from ``$PGPASSWORD`` or a ``~/.pgpass`` / ``$PGPASSFILE`` file (libpq's own), TLS from
``?sslmode=verify-full&sslrootcert=CA.pem`` (or ``$PGSSLMODE``). A password written in the
URL still works, but it shows in the process list; no message ever shows it
(:func:`redact`). Same columns and behaviour as the SQLite store
(``fleet_ops.records.model``); the table is ``tinyops_records``, its schema version is in
``tinyops_schema``.

Migrations run only when the schema is older than this TinyOps, under a PostgreSQL advisory
lock (stations starting together upgrade it once), by a role that may create tables (the
database owner). Stations may then use a least-privilege role (``docs/records_server.md``
lists the grants): ``USAGE`` on the schema, ``SELECT, INSERT`` on ``tinyops_records``,
``SELECT`` on ``tinyops_schema``, ``USAGE`` on ``tinyops_records_id_seq``.

Every round trip is bounded: ``connect_timeout``, ``statement_timeout``, ``lock_timeout``
and TCP keepalives on the server's side, and a client-side deadline
(:data:`ROUND_TRIP_S`) that cuts the connection of a server that stopped answering at all
(a stopped process, a dead link); the record then waits in the outbox.

Writing never waits for the server: :meth:`SharedRecordStore.add` puts the record in the
outbox (a local SQLite file) and then tries to deliver everything waiting; when the server
is away the record stays there until the next attempt. Reading (``list``, ``export_csv``)
first delivers what is waiting, then reads the server. Inserts go by the record's UUID
(``ON CONFLICT (uid) DO NOTHING``): a record sent twice is stored once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError, TinyOpsError
from fleet_ops.records.model import (
    COLUMNS,
    Record,
    RecordStore,
    check_records_url,
    fill_defaults,
    list_query,
    record_row,
    records_url,
    row_to_record,
)
from fleet_ops.records.outbox import Outbox

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
STATEMENT_TIMEOUT_MS = 10_000
LOCK_TIMEOUT_MS = 5_000
ROUND_TRIP_S = 20.0
"""Client-side bound of one batch (connect, insert, commit) when the server does not answer."""
CONNECT_OPTIONS: dict[str, Any] = {
    "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "tinyops",
    "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5, "keepalives_count": 3,
    "tcp_user_timeout": 15_000,
    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS} "
               "-c idle_in_transaction_session_timeout=60000",
}
GRANTS_HINT = ("the database owner runs the migration once (any tinyops records command); "
               "grant stations USAGE on the schema, SELECT, INSERT on tinyops_records, SELECT "
               "on tinyops_schema, USAGE on tinyops_records_id_seq (docs/records_server.md)")
_warned: list[bool] = []
_LOCK_KEY = 0x7469_6E79  # "tiny": the advisory lock that serialises migrations

PG_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tinyops_records (
        id              BIGSERIAL PRIMARY KEY,
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
        artifact_size   BIGINT,
        result          TEXT NOT NULL,
        verify          TEXT,
        error           TEXT,
        duration_s      DOUBLE PRECISION,
        details         TEXT
    );
    CREATE INDEX tinyops_records_time ON tinyops_records(time);
    CREATE INDEX tinyops_records_serial ON tinyops_records(usb_serial);
    """,
    """
    ALTER TABLE tinyops_records ADD COLUMN uid UUID, ADD COLUMN station TEXT;
    UPDATE tinyops_records SET uid = gen_random_uuid() WHERE uid IS NULL;
    ALTER TABLE tinyops_records ALTER COLUMN uid SET NOT NULL;
    CREATE UNIQUE INDEX tinyops_records_uid ON tinyops_records(uid);
    """,
)
SCHEMA_VERSION = len(PG_MIGRATIONS)


def redact(text: str, url: str) -> str:
    """``text`` with the password of ``url`` (raw and decoded) replaced by ``***``."""
    from urllib.parse import unquote, urlsplit

    try:
        raw = urlsplit(url).netloc.rpartition("@")[0].partition(":")[2]
    except ValueError:
        raw = ""
    for secret in {raw, unquote(raw)} - {""}:
        text = text.replace(secret, "***")
    return text


def describe(url: str) -> str:
    """``user@host:port/dbname`` of ``url``, without the password (for messages)."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:
        return "the records server"
    host = info.get("host") or "localhost"
    where = f"{host}:{info['port']}" if info.get("port") else str(host)
    user = f"{info['user']}@" if info.get("user") else ""
    return f"{user}{where}/{info.get('dbname') or ''}"


def check_conninfo(url: str) -> None:
    """``InputError`` for a URL libpq cannot use, before any attempt to connect."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    hint = "write it as postgresql://user@host:port/dbname (password in $PGPASSWORD or ~/.pgpass)"
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise InputError(f"bad records URL: {redact(str(exc).splitlines()[0], url)}",
                         hint) from None
    ports = str(info.get("port") or "5432").split(",")
    if not all(p.strip().isdigit() for p in ports):
        raise InputError(f"bad records URL: the port {info.get('port')!r} is not a number", hint)


def _clean(value: Any) -> Any:
    """PostgreSQL text cannot hold NUL characters: store U+FFFD instead."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


class SharedRecordStore(RecordStore):
    """Records in PostgreSQL; ``path`` is the station's outbox file."""

    def __new__(cls, path: str | Path | None = None, url: str | None = None
                ) -> SharedRecordStore:
        return object.__new__(cls)

    def __init__(self, path: str | Path | None = None, url: str | None = None) -> None:
        self.url = check_records_url(url if url is not None else records_url())
        if not self.url:
            raise InputError("no PostgreSQL URL for the shared records",
                             "set TINYOPS_RECORDS_URL=postgresql://…")
        check_conninfo(self.url)
        if redact(self.url, self.url) != self.url and not _warned:
            _warned.append(True)  # once per process
            log.warning("the records URL holds a password (visible in the process list when "
                        "given as --records); use $PGPASSWORD or ~/.pgpass instead")
        self.outbox = Outbox(path)
        self.path = self.outbox.path
        self._conn: Any = None
        self._lock = threading.RLock()
        self._migrated = False

    # ------------------------------------------------------------ connection
    @contextmanager
    def _pg(self) -> Iterator[Any]:
        """The open connection (made on first use, remade after a failure)."""
        import psycopg

        with self._lock:
            timer = threading.Timer(ROUND_TRIP_S, self._cut)
            timer.daemon = True
            timer.start()
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._open()
                yield self._conn
            except psycopg.OperationalError as exc:
                self.close()
                raise self._unreachable(exc) from None
            except psycopg.Error as exc:  # privileges, read-only: the record waits
                raise self._refused(exc) from None
            finally:
                timer.cancel()

    def _cut(self) -> None:
        """The deadline passed: shut the socket so the blocked call fails at once."""
        import socket

        conn = self._conn
        try:
            fd = conn.pgconn.socket if conn is not None else -1
        except Exception:
            return
        if fd >= 0:
            log.warning("records server %s did not answer within %.0f s: connection cut",
                        describe(self.url), ROUND_TRIP_S)
            with socket.socket(fileno=os.dup(fd)) as sock, contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _open(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, **CONNECT_OPTIONS)
        except psycopg.ProgrammingError as exc:
            raise InputError(f"bad records URL: {redact(str(exc).splitlines()[0], self.url)}",
                             "write it as postgresql://user@host:port/dbname") from None
        except psycopg.OperationalError as exc:
            raise self._unreachable(exc) from None
        if not self._migrated:
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._migrated = True
        return conn

    def _refused(self, exc: Exception) -> TinyOpsError:
        text = redact(" ".join(str(exc).split()), self.url)[:200]
        where = describe(self.url)
        return TinyOpsError(f"the records server {where} refused: {text}",
                            f"records wait in the outbox; {GRANTS_HINT}")

    def _unreachable(self, exc: Exception) -> TinyOpsError:
        text = redact(" ".join(str(exc).split()), self.url)
        where = describe(self.url)
        if "timeout" in text or "canceling statement" in text:
            return TinyOpsError(f"the records server {where} did not answer in time: "
                                f"{text[:160]}", "records wait in the outbox; a lock held "
                                "on tinyops_records or a busy server (check pg_stat_activity)")
        if "password authentication failed" in text or "no pg_hba.conf entry" in text \
                or ("role" in text and "does not exist" in text):
            return TinyOpsError(f"the records server {where} refused the login: "
                                f"{text.split('FATAL:')[-1].strip()[:160]}",
                                "check the user and password in TINYOPS_RECORDS_URL / --records")
        if "database" in text and "does not exist" in text:
            return TinyOpsError(f"the records database {where} does not exist",
                                "create it (createdb) or fix the name in the records URL")
        return TinyOpsError(f"cannot reach the records server {where}: {text[:160]}",
                            "records wait in the outbox; check the server and the network")

    def migrate(self) -> None:
        """Connect, creating or upgrading the schema if needed (needs a role that may)."""
        with self._pg():
            pass

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                finally:
                    self._conn = None

    def _version(self, conn: Any) -> int | None:
        """The schema version, read only (None: no schema yet)."""
        if conn.execute("SELECT to_regclass('tinyops_schema')").fetchone()[0] is None:
            return None
        return int(conn.execute(
            "SELECT COALESCE(MAX(version), 0) FROM tinyops_schema").fetchone()[0])

    def _migrate(self, conn: Any) -> None:
        import psycopg

        version = self._version(conn)
        if version == SCHEMA_VERSION:
            return  # nothing to do: a least-privilege role never tries to create anything
        try:
            self._upgrade(conn)
        except psycopg.errors.InsufficientPrivilege:
            raise TinyOpsError(f"the records database {describe(self.url)} needs its schema "
                               f"{'created' if version is None else 'upgraded'} (version "
                               f"{version or 0} → {SCHEMA_VERSION}) and this role may not",
                               f"run 'tinyops records' once as the database owner; "
                               f"{GRANTS_HINT}") from None

    def _upgrade(self, conn: Any) -> None:
        with conn.transaction():
            # a migration may rewrite a large table: not bounded by statement_timeout (it runs
            # on a connection not yet watched by the client-side deadline, once per upgrade)
            conn.execute("SET LOCAL statement_timeout = 0")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            conn.execute("CREATE TABLE IF NOT EXISTS tinyops_schema "
                         "(version INTEGER PRIMARY KEY, applied TIMESTAMPTZ DEFAULT now())")
            row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM tinyops_schema").fetchone()
            version = int(row[0])
            if version > SCHEMA_VERSION:
                raise TinyOpsError(f"the records database {describe(self.url)} is from a newer "
                                   f"TinyOps (schema {version})", "upgrade TinyOps to use it")
            for step in range(version + 1, SCHEMA_VERSION + 1):
                conn.execute(PG_MIGRATIONS[step - 1])
                conn.execute("INSERT INTO tinyops_schema (version) VALUES (%s)", (step,))

    # ------------------------------------------------------------ delivery
    def _send(self, rows: list[dict[str, Any]]) -> list[str]:
        """Insert ``rows`` in one transaction (by uid, duplicates ignored); a row the server
        refuses for its content is retried alone and reported back."""
        import psycopg

        names = [c for c in COLUMNS if c != "id"]
        sql = (f"INSERT INTO tinyops_records ({', '.join(names)}) VALUES "
               f"({', '.join('%s' for _ in names)}) ON CONFLICT (uid) DO NOTHING")
        values = [tuple(_clean(row.get(c)) for c in names) for row in rows]
        refused: list[str] = []
        with self._pg() as conn:
            try:
                with conn.transaction(), conn.cursor() as cur:
                    cur.executemany(sql, values)
            except (psycopg.DataError, psycopg.IntegrityError):
                with conn.transaction():
                    for row, value in zip(rows, values, strict=True):
                        try:
                            with conn.transaction():  # a savepoint per row
                                conn.execute(sql, value)
                        except (psycopg.DataError, psycopg.IntegrityError) as exc:
                            log.error("records server refused record %s: %s", row["uid"], exc)
                            refused.append(str(row["uid"]))
        return refused

    def deliver(self, *, automatic: bool = False) -> int:
        """Send what waits in the outbox; returns how many were delivered. Raises
        ``TinyOpsError`` (one line) when the server cannot be used."""
        if automatic and not self.outbox.due():
            return 0
        count = self.outbox.deliver(self._send, wait_s=0.0 if automatic else ROUND_TRIP_S * 2)
        if count:
            log.info("delivered %d records to %s", count, describe(self.url))
        return count

    def pending_count(self) -> int:
        return self.outbox.pending_count()

    # ------------------------------------------------------------ the store API
    def add(self, record: Record) -> int:
        """Keep the record in the outbox, then deliver; returns its server id, or 0 while
        it waits for the server."""
        row = record_row(fill_defaults(record))
        self.outbox.put(str(record.uid), row)
        try:
            self.deliver(automatic=True)
            if self.outbox.holds(str(record.uid)):
                return 0  # a recent failure: the next command that touches records sends it
            with self._pg() as conn:
                found = conn.execute("SELECT id FROM tinyops_records WHERE uid = %s",
                                     (record.uid,)).fetchone()
        except TinyOpsError as exc:
            log.warning("record %s kept for later: %s", record.uid, exc)
            return 0
        record.id = int(found[0]) if found else None
        return record.id or 0

    def list(self, limit: int | None = None, operation: str | None = None,
             usb_serial: str | None = None) -> list[Record]:
        """Records on the server, newest first (what waits is delivered first)."""
        self.deliver()
        sql, args = list_query("tinyops_records", "%s", limit, operation, usb_serial)
        with self._pg() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [row_to_record(tuple(row)) for row in rows]
