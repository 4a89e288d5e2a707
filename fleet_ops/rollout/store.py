"""Rollouts in the records database: plans, devices, events, and who holds a rollout.

PostgreSQL when the records URL names one (``fleet_ops.records.records_url()``), else the
local SQLite records file. Tables ``rollouts``, ``rollout_devices``, ``rollout_events`` and
``rollout_holders``, with their own schema version (``rollout_schema``). Every write is
committed before the method returns: a decision is on disk before it is acted on.

A database that goes away (PostgreSQL killed, restarted) is retried with bounded backoff
(``db.PATIENCE_S`` in all); the caller's call then simply returns late. Past that,
``TinyOpsError``. Connections, retries and the holder lock (:meth:`RolloutStore.hold`:
a PostgreSQL advisory lock or an SQLite lease; a second holder gets :class:`RolloutHeld`
naming the first) are in ``db.py``.
"""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError, TinyOpsError
from fleet_ops import records
from fleet_ops.records import pg as records_pg
from fleet_ops.rollout.db import (
    Hold,
    Query,
    RolloutHeld,
    _Db,
    _PgDb,
    dead_here,
    holder_name,
    lock_key,
)
from fleet_ops.rollout.plan import (
    ACTIONS,
    DeviceEntry,
    DeviceStep,
    Event,
    Rollout,
    RolloutState,
    now_iso,
)

__all__ = ["Hold", "RolloutHeld", "RolloutStore", "iter_active"]

SCHEMA_VERSION = 1
_DDL = """
CREATE TABLE IF NOT EXISTS rollout_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rollouts (
    id TEXT PRIMARY KEY, created TEXT NOT NULL, updated TEXT NOT NULL, state TEXT NOT NULL,
    step_index INTEGER NOT NULL, halt_reason TEXT, requested TEXT, plan TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rollout_devices (
    rollout_id TEXT NOT NULL, device_id TEXT NOT NULL, step_index INTEGER NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL, bytes_sent BIGINT NOT NULL,
    previous_sha256 TEXT, reason TEXT, updated TEXT NOT NULL,
    PRIMARY KEY (rollout_id, device_id));
CREATE TABLE IF NOT EXISTS rollout_events (
    id {serial}, rollout_id TEXT NOT NULL, time TEXT NOT NULL, kind TEXT NOT NULL,
    device_id TEXT, why TEXT NOT NULL, figures TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS rollout_events_rollout ON rollout_events(rollout_id, id);
CREATE TABLE IF NOT EXISTS rollout_holders (
    rollout_id TEXT PRIMARY KEY, holder TEXT NOT NULL, expires DOUBLE PRECISION NOT NULL)
"""
_STATE_COLS = ("state", "step_index", "halt_reason", "requested", "updated")
_DEV_COLS = ("rollout_id", "device_id", "step_index", "state", "attempts", "bytes_sent",
             "previous_sha256", "reason", "updated")


class RolloutStore:
    def __init__(self, db: _Db) -> None:
        self.db = db
        self.db.run(self._migrate)

    @classmethod
    def open(cls, url: str | None = None, path: str | Path | None = None) -> RolloutStore:
        """``url``: ``postgresql://…``; ``None``: the configured records URL; ``""`` or no
        URL configured: the SQLite records file (or ``path``)."""
        url = records.records_url() if url is None else records.check_records_url(url)
        if url:
            records_pg.check_conninfo(url)
            return cls(_PgDb(url))
        target = Path(path) if path else records.db_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        return cls(_Db(str(target)))

    def close(self) -> None:
        self.db.close()

    def _migrate(self, q: Query) -> None:
        if self.db.pg:
            q("SELECT pg_advisory_xact_lock(?)", (lock_key("schema"),))
        serial = "BIGSERIAL PRIMARY KEY" if self.db.pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
        for statement in _DDL.format(serial=serial).split(";"):
            if statement.strip():
                q(statement)
        rows = q("SELECT version FROM rollout_schema")
        if not rows:
            q("INSERT INTO rollout_schema (version) VALUES (?)", (SCHEMA_VERSION,))
        elif rows[0][0] > SCHEMA_VERSION:
            raise TinyOpsError(f"the rollout tables are version {rows[0][0]}, newer than this "
                               f"TinyOps ({SCHEMA_VERSION})", "update TinyOps")

    # ------------------------------------------------------------------ rollouts
    def create(self, rollout: Rollout, device_ids: list[str] | dict[str, int]) -> str:
        """Store the plan and its devices (``{device: step_index}`` or a list, all step 0)."""
        steps = device_ids if isinstance(device_ids, dict) else dict.fromkeys(device_ids, 0)
        plan = {k: v for k, v in rollout.to_dict().items() if k not in _STATE_COLS}
        now = now_iso()

        def write(q: Query) -> None:
            q("INSERT INTO rollouts (id, created, updated, state, step_index, halt_reason, "
              "requested, plan) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
              (rollout.id, rollout.created, now, rollout.state.value, rollout.step_index,
               rollout.halt_reason, rollout.requested, json.dumps(plan)))
            for device, index in steps.items():
                self._put_device(q, DeviceEntry(rollout.id, device, index, updated=now))
            self._put_event(q, Event(rollout.id, "created", f"{len(steps)} devices",
                                     figures={"devices": len(steps)}))

        self.db.run(write)
        return rollout.id

    def _row(self, row: tuple[Any, ...]) -> Rollout:
        rid, created, updated, state, step_index, halt_reason, requested, plan = row
        data = json.loads(plan)
        data.update(id=rid, created=created, updated=updated, state=state,
                    step_index=step_index, halt_reason=halt_reason, requested=requested)
        return Rollout.from_dict(data)

    _SELECT = ("SELECT id, created, updated, state, step_index, halt_reason, requested, plan "
               "FROM rollouts")

    def get(self, rollout_id: str) -> Rollout:
        rows = self.db.run(lambda q: q(f"{self._SELECT} WHERE id = ?", (rollout_id,)))
        if not rows:
            rows = self.db.run(lambda q: q(f"{self._SELECT} WHERE id LIKE ?",
                                           (rollout_id.replace("%", "") + "%",)))
            if len(rows) != 1:
                raise InputError(f"no rollout {rollout_id!r}" if not rows else
                                 f"{len(rows)} rollouts start with {rollout_id!r}",
                                 "`tinyops rollout list` shows them")
        return self._row(rows[0])

    def list(self) -> list[Rollout]:
        rows = self.db.run(lambda q: q(f"{self._SELECT} ORDER BY created DESC"))
        return [self._row(r) for r in rows]

    def set_state(self, rollout_id: str, state: RolloutState, why: str = "",
                  figures: dict[str, Any] | None = None, *, kind: str | None = None,
                  step_index: int | None = None, halt_reason: str | None = None,
                  clear_request: bool = False) -> None:
        """New state (and step, halt reason) and the event that says why, in one commit."""

        def write(q: Query) -> None:
            sets = ["state = ?", "updated = ?"]
            params: list[Any] = [state.value, now_iso()]
            if step_index is not None:
                sets.append("step_index = ?")
                params.append(step_index)
            if halt_reason is not None or state in (RolloutState.RUNNING,
                                                    RolloutState.COMPLETED):
                sets.append("halt_reason = ?")
                params.append(halt_reason)
            if clear_request:
                sets.append("requested = NULL")
            q(f"UPDATE rollouts SET {', '.join(sets)} WHERE id = ?", (*params, rollout_id))
            self._put_event(q, Event(rollout_id, kind or state.value, why,
                                     figures=dict(figures or {})))

        self.db.run(write)

    def request(self, rollout_id: str, action: str) -> None:
        """Ask the holder to ``pause|resume|abort|rollback`` (it acts within about a second)."""
        if action not in ACTIONS:
            raise InputError(f"unknown action {action!r}", f"one of {', '.join(ACTIONS)}")
        rid = self.get(rollout_id).id
        self.db.run(lambda q: q("UPDATE rollouts SET requested = ?, updated = ? WHERE id = ?",
                                (action, now_iso(), rid)))

    def clear_request(self, rollout_id: str) -> None:
        self.db.run(lambda q: q("UPDATE rollouts SET requested = NULL WHERE id = ?",
                                (rollout_id,)))

    # ------------------------------------------------------------------ devices
    def _put_device(self, q: Query, e: DeviceEntry) -> None:
        q("DELETE FROM rollout_devices WHERE rollout_id = ? AND device_id = ?",
          (e.rollout_id, e.device_id))
        q(f"INSERT INTO rollout_devices ({', '.join(_DEV_COLS)}) VALUES "
          f"({', '.join('?' * len(_DEV_COLS))})",
          (e.rollout_id, e.device_id, e.step_index, e.state.value, e.attempts, e.bytes_sent,
           e.previous_sha256, e.reason, e.updated))

    def update_device(self, entry: DeviceEntry, event: Event | None = None) -> None:
        """Write one device's entry (and the event that explains it) in one commit."""
        entry.updated = now_iso()

        def write(q: Query) -> None:
            self._put_device(q, entry)
            if event is not None:
                self._put_event(q, event)

        self.db.run(write)

    def update_devices(self, entries: builtins.list[DeviceEntry],
                       events: builtins.list[Event]) -> None:
        """Many entries and events in one commit (a step's decisions)."""
        now = now_iso()

        def write(q: Query) -> None:
            for entry in entries:
                entry.updated = now
                self._put_device(q, entry)
            for event in events:
                self._put_event(q, event)

        if entries or events:
            self.db.run(write)

    def devices(self, rollout_id: str) -> builtins.list[DeviceEntry]:
        rows = self.db.run(lambda q: q(
            f"SELECT {', '.join(_DEV_COLS)} FROM rollout_devices WHERE rollout_id = ? "
            "ORDER BY step_index, device_id", (rollout_id,)))
        return [DeviceEntry.from_dict(dict(zip(_DEV_COLS, r, strict=True))) for r in rows]

    def counts(self, rollout_id: str) -> dict[DeviceStep, int]:
        rows = self.db.run(lambda q: q(
            "SELECT state, COUNT(*) FROM rollout_devices WHERE rollout_id = ? GROUP BY state",
            (rollout_id,)))
        out = dict.fromkeys(DeviceStep, 0)
        out.update({DeviceStep(s): int(n) for s, n in rows})
        return out

    # ------------------------------------------------------------------ events
    def _put_event(self, q: Query, ev: Event) -> None:
        q("INSERT INTO rollout_events (rollout_id, time, kind, device_id, why, figures) "
          "VALUES (?, ?, ?, ?, ?, ?)",
          (ev.rollout_id, ev.time, ev.kind, ev.device_id, ev.why,
           json.dumps(ev.figures, default=str)))

    def add_event(self, event: Event) -> None:
        self.db.run(lambda q: self._put_event(q, event))

    def events(self, rollout_id: str, limit: int | None = None) -> builtins.list[Event]:
        """Oldest first; ``limit``: the newest ``limit`` of them."""
        sql = ("SELECT rollout_id, time, kind, device_id, why, figures FROM rollout_events "
               "WHERE rollout_id = ? ORDER BY id DESC")
        params: tuple[Any, ...] = (rollout_id,)
        if limit is not None:
            sql += " LIMIT ?"
            params += (int(limit),)
        rows = self.db.run(lambda q: q(sql, params))
        return [Event(rollout_id=r[0], time=r[1], kind=r[2], device_id=r[3], why=r[4],
                      figures=json.loads(r[5])) for r in reversed(rows)]

    # ------------------------------------------------------------------ hold
    def hold(self, rollout_id: str, holder: str | None = None) -> Hold:
        return Hold(self.db, rollout_id, holder or holder_name())

    def holder(self, rollout_id: str) -> str | None:
        """Who holds it now (``None``: nobody, or a lease that ran out)."""
        rows = self.db.run(lambda q: q(
            "SELECT holder, expires FROM rollout_holders WHERE rollout_id = ?", (rollout_id,)))
        if not rows or (not self.db.pg and (rows[0][1] < time.time() or
                                            dead_here(str(rows[0][0])))):
            return None
        if self.db.pg:  # the row of a killed holder stays: the lock tells whether it lives
            probe = _PgDb(self.db.target)
            try:
                key = lock_key(rollout_id)
                free = probe.run(lambda q: q("SELECT pg_try_advisory_lock(?)", (key,))[0][0])
                if free:
                    probe.run(lambda q: q("SELECT pg_advisory_unlock(?)", (key,)))
                    return None
            finally:
                probe.close()
        return str(rows[0][0])


def iter_active(store: RolloutStore) -> Iterator[Rollout]:
    """Rollouts not finished (running, paused, halted, created, rolling back)."""
    return (r for r in store.list() if not r.state.finished)
