"""Provisioning records: one SQLite row per device operation (flash, validate), and per
model operation (quantize, export: :data:`MODEL_OPERATIONS`, no board involved).

The database lives in ``paths.data_dir()/records.sqlite``. It runs in WAL mode with
``synchronous=FULL``: WAL alone already survives a killed process (a commit is in the log
before ``commit()`` returns), and FULL adds an fsync of the log on every commit, so a
record also survives a power cut at the station. That costs one fsync per operation, a
few milliseconds next to a flash that takes seconds; a record is the proof of what a
board got, so it is worth it.

Every thread or process opens its own connection (``busy_timeout`` covers concurrent
writers in station mode).

Where the records go is one setting (:func:`records_url`): empty means this SQLite file;
``postgresql://…`` means a shared PostgreSQL database (``fleet_ops.records.pg``) fed
through a local outbox (``fleet_ops.records.outbox``). Both have the same columns and
behaviour; :func:`open_store` opens whichever is configured, ``RecordStore`` is always the
SQLite file. Each record carries a UUIDv7 (``uid``, unique across stations) and
the ``station`` that wrote it. The schema is versioned: :data:`SQLITE_MIGRATIONS` here,
``pg.PG_MIGRATIONS`` there, step ``n`` taking a database from version ``n-1`` to
``n``.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from device_drivers import settings
from device_drivers.errors import TinyOpsError
from fleet_ops.records.model import (
    COLUMNS,
    DEVICE_OPERATIONS,
    MODEL_OPERATIONS,
    OPERATOR_ENV,
    RECORDS_URL_ENV,
    RECORDS_URL_SETTING,
    STATION_ENV,
    Record,
    RecordStore,
    check_records_url,
    current_operator,
    current_station,
    db_path,
    fill_defaults,
    list_query,
    model_record,
    record_row,
    records_url,
    row_to_record,
    write_csv,
)
from fleet_ops.records.sqlite import SQLITE_MIGRATIONS as SQLITE_MIGRATIONS  # re-export

__all__ = ["COLUMNS", "DEVICE_OPERATIONS", "MODEL_OPERATIONS", "OPERATOR_ENV",
           "RECORDS_URL_ENV", "RECORDS_URL_SETTING", "SQLITE_MIGRATIONS", "STATION_ENV",
           "Record", "RecordStore", "add_record", "check_destination", "check_records_url",
           "current_operator", "current_station", "db_path", "fill_defaults", "list_query",
           "model_record", "open_store", "pending_count", "record_row", "records_url",
           "row_to_record", "set_records_url", "watch_records", "write_csv"]

log = logging.getLogger(__name__)


def check_destination() -> str:
    """The records URL, checked as far as it can be without the server (scheme, syntax,
    port): a command calls it before it touches a device. ``InputError`` (exit 2)."""
    url = records_url()
    if url:
        from fleet_ops.records.pg import check_conninfo

        check_conninfo(url)
    return url


def set_records_url(url: str | None) -> str:
    """Store the station's records URL (blank or None: the local SQLite file)."""
    clean = check_records_url(url or "")
    settings.save(**{RECORDS_URL_SETTING: clean or None})
    return clean


def open_store(url: str | None = None) -> RecordStore:
    """The configured records store (``url`` overrides :func:`records_url`)."""
    url = records_url() if url is None else check_records_url(url)
    if url:
        from fleet_ops.records.pg import SharedRecordStore

        return SharedRecordStore(url=url)
    return RecordStore(db_path())


def pending_count() -> int:
    """Records this station holds for the server ("N records waiting for the server")."""
    from fleet_ops.records.outbox import Outbox

    return Outbox().pending_count()


_watchers: list[list[tuple[Record, str]]] = []
_watch_lock = threading.Lock()


@contextmanager
def watch_records() -> Iterator[list[tuple[Record, str]]]:
    """Collects ``(record, outcome)`` of every :func:`add_record` in this process while
    open; outcome ``stored`` (on the server or in the local file), ``queued`` (in the
    station's outbox, waiting for the server) or ``nowhere``. The CLI turns them into what
    it says and its exit code."""
    seen: list[tuple[Record, str]] = []
    with _watch_lock:
        _watchers.append(seen)
    try:
        yield seen
    finally:
        with _watch_lock:
            _watchers.remove(seen)


def add_record(record: Record, store: RecordStore | None = None) -> int | None:
    """Store a record: its id, 0 while it waits in the outbox for the server, None when it
    could not be written anywhere (logged; never hides the operation's result)."""
    try:
        rid: int | None = (store or open_store()).add(record)
    except Exception as exc:  # a record write must never turn a verified flash into a crash
        log.error("could not write the provisioning record %s: %s", record.uid,
                  getattr(exc, "message", None) or exc,
                  exc_info=not isinstance(exc, (TinyOpsError, sqlite3.Error, OSError)))
        rid = None
    outcome = "nowhere" if rid is None else ("queued" if rid == 0 else "stored")
    with _watch_lock:
        for seen in _watchers:
            seen.append((record, outcome))
    return rid
