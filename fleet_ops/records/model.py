"""What both records stores share: the record, its columns and their conversion to rows,
the records URL and its checks, the station's identity, and the local SQLite store.

``fleet_ops.records`` (choosing and feeding the configured store) and
``fleet_ops.records.pg`` (the shared PostgreSQL store) both import this module and neither
imports the other back (no import circle); the public names stay importable from
``fleet_ops.records``.
"""

from __future__ import annotations

import csv
import getpass
import json
import logging
import os
import socket
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from device_drivers import paths, settings
from device_drivers.errors import InputError, TinyOpsError
from fleet_ops.records.sqlite import SCHEMA_VERSION, _migrate, set_wal
from fleet_ops.records.uuid7 import uuid7

log = logging.getLogger("fleet_ops.records")

OPERATOR_ENV = "TINYOPS_OPERATOR"
STATION_ENV = "TINYOPS_STATION"
RECORDS_URL_ENV = "TINYOPS_RECORDS_URL"
RECORDS_URL_SETTING = "records_url"

@dataclass
class Record:
    """One operation on one board. ``result`` is ``ok``, ``failed`` or ``cancelled``."""

    operation: str
    result: str
    port: str | None = None
    board: str | None = None
    usb_serial: str | None = None
    backend: str | None = None
    artifact: str | None = None
    artifact_sha256: str | None = None
    artifact_size: int | None = None
    verify: str | None = None
    error: str | None = None
    duration_s: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    operator: str | None = None
    host: str | None = None
    time: str | None = None
    id: int | None = None
    uid: str | None = None
    station: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


COLUMNS = ("id", "uid", "station", "time", "operation", "operator", "host", "port", "board",
           "usb_serial", "backend", "artifact", "artifact_sha256", "artifact_size", "result",
           "verify", "error", "duration_s", "details")


DEVICE_OPERATIONS = ("flash", "validate")
MODEL_OPERATIONS = ("quantize", "export")
"""Record kinds for work on a model file: ``artifact`` is the file written, ``details``
holds the source model (``source``, ``source_sha256``) and the operation's settings."""


def model_record(operation: str, result: str, *, artifact: str | None = None,
                 artifact_sha256: str | None = None, artifact_size: int | None = None,
                 duration_s: float | None = None, error: str | None = None,
                 details: dict[str, Any] | None = None) -> Record:
    """The record of a quantize or export (no port, board or USB serial)."""
    if operation not in MODEL_OPERATIONS:
        raise ValueError(f"not a model operation: {operation!r}")
    return Record(operation=operation, result=result, artifact=artifact,
                  artifact_sha256=artifact_sha256, artifact_size=artifact_size,
                  duration_s=None if duration_s is None else round(duration_s, 4),
                  error=error, details=dict(details or {}))


def db_path() -> Path:
    return paths.data_dir() / "records.sqlite"


def current_operator() -> str:
    """The operator name: ``$TINYOPS_OPERATOR`` (the CLI's ``--operator`` sets it), else the
    one stored in the station settings (``device_drivers.settings``, which the GUI writes),
    else the login."""
    name = os.environ.get(OPERATOR_ENV, "").strip()
    if name:
        return name
    stored = settings.stored_operator()
    if stored:
        return stored
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def current_station() -> str:
    """The station name written into every record: ``$TINYOPS_STATION``, else the host name."""
    return os.environ.get(STATION_ENV, "").strip() or socket.gethostname()


def records_url() -> str:
    """Where records go: ``$TINYOPS_RECORDS_URL`` (the CLI's ``--records`` sets it), else the
    station setting (:func:`set_records_url`, which the GUI writes), else ``""``: the local
    SQLite file."""
    value = os.environ.get(RECORDS_URL_ENV)
    if value is None:
        stored = settings.load().get(RECORDS_URL_SETTING)
        value = stored if isinstance(stored, str) else ""
    return check_records_url(value)


def check_records_url(url: str) -> str:
    """``url`` stripped, or ``InputError`` when it names no store TinyOps can use."""
    url = (url or "").strip()
    if url and not url.startswith(("postgresql://", "postgres://")):
        scheme = url.split("://", 1)[0] if "://" in url else ""
        shown = repr(scheme[:20]) if scheme.isalnum() else "(no scheme)"
        raise InputError(f"unsupported records URL {shown}",
                         "use postgresql://user@host:port/dbname (password in $PGPASSWORD or "
                         "~/.pgpass), or nothing for the local SQLite file")
    return url


def fill_defaults(record: Record) -> Record:
    """Fill what the writer need not give: time, operator, host, station, uid."""
    record.time = record.time or datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    record.operator = record.operator or current_operator()
    record.host = record.host or socket.gethostname()
    record.station = record.station or current_station()
    record.uid = record.uid or str(uuid7())
    return record


_INIT_LOCK = threading.Lock()


class RecordStore:
    """The local SQLite records database (``RecordStore()``: the station's file,
    ``RecordStore(path)``: that file). Cheap to create; each call opens and closes its
    connection. The *configured* store, PostgreSQL included, is :func:`open_store`."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else db_path()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=15.0)
        except (OSError, sqlite3.Error) as exc:
            raise TinyOpsError(f"cannot open the records database {self.path}: {exc}",
                               "check that the data directory is writable") from exc
        with closing(conn):
            try:
                conn.execute("PRAGMA busy_timeout=15000")
                with _INIT_LOCK:  # first use: threads of one process must not race the setup
                    set_wal(conn)
                    version = _migrate(conn)
                conn.execute("PRAGMA synchronous=FULL")
                if version > SCHEMA_VERSION:
                    raise TinyOpsError(
                        f"the records database {self.path} is from a newer TinyOps "
                        f"(schema {version})", "upgrade TinyOps to read it")
            except sqlite3.DatabaseError as exc:
                raise TinyOpsError(f"the records database {self.path} is damaged: {exc}",
                                   "move it aside; TinyOps starts a new one") from exc
            yield conn

    def add(self, record: Record) -> int:
        """Store ``record`` (filling time, operator, host, station and uid when missing);
        return its id. A record whose uid is already stored is not stored twice."""
        row = record_row(fill_defaults(record))
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._connect() as conn, conn:
            conn.execute(f"INSERT OR IGNORE INTO records ({names}) VALUES ({marks})",
                         tuple(row.values()))
            found = conn.execute("SELECT id FROM records WHERE uid = ?", (record.uid,)).fetchone()
            record.id = int(found[0])
        log.info("record %s: %s %s on %s -> %s", record.id, record.operation, record.artifact,
                 record.port, record.result)
        return record.id

    def list(self, limit: int | None = None, operation: str | None = None,
             usb_serial: str | None = None) -> list[Record]:
        """Records, newest first."""
        sql, args = list_query("records", "?", limit, operation, usb_serial)
        if not self.path.exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [row_to_record(row) for row in rows]

    def export_csv(self, dest: str | Path) -> int:
        """Write every record (oldest first) to ``dest`` as CSV; return the row count."""
        return write_csv((rec.to_dict() for rec in reversed(self.list())), dest)


def list_query(table: str, mark: str, limit: int | None, operation: str | None,
               usb_serial: str | None) -> tuple[str, list[Any]]:
    """The newest-first SELECT both stores run (``mark``: the driver's placeholder)."""
    filters = [(col, v) for col, v in (("operation", operation), ("usb_serial", usb_serial)) if v]
    where = [f"{col} = {mark}" for col, _ in filters]
    args: list[Any] = [v for _, v in filters]
    sql = f"SELECT {', '.join(COLUMNS)} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {mark}"
        args.append(int(limit))
    return sql, args


def write_csv(rows: Iterable[Mapping[str, Any]], dest: str | Path) -> int:
    """The one CSV form of records (``tinyops records --export`` and the Records page):
    every column of ``COLUMNS``, ``details`` as sorted JSON, None as empty. Returns the row
    count; InputError if ``dest`` cannot be written."""
    dest = Path(dest)
    count = 0
    try:
        with dest.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(COLUMNS)
            for row in rows:
                values = dict(row)
                values["details"] = json.dumps(values.get("details") or {}, sort_keys=True)
                writer.writerow(["" if values.get(c) is None else values[c] for c in COLUMNS])
                count += 1
    except OSError as exc:
        raise InputError(f"cannot write {dest}: {exc.strerror or exc}",
                         "choose a writable path for the export") from exc
    return count


def record_row(record: Record) -> dict[str, Any]:
    """The stored columns of ``record`` (all but ``id``), ``details`` as JSON text."""
    row = {k: getattr(record, k) for k in COLUMNS if k != "id"}
    row["details"] = json.dumps(record.details or {}, default=str, sort_keys=True)
    return row


def row_to_record(row: tuple[Any, ...]) -> Record:
    values = dict(zip(COLUMNS, row, strict=True))
    if values.get("uid") is not None:
        values["uid"] = str(values["uid"])
    try:
        values["details"] = json.loads(values["details"] or "{}")
    except ValueError:
        values["details"] = {"raw": values["details"]}
    known = {f.name for f in fields(Record)}
    return Record(**{k: v for k, v in values.items() if k in known})

