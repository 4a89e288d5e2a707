"""Provisioning records: stored, listed, exported, and intact after a killed process."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_drivers import paths
from fleet_ops.records import COLUMNS, Record, RecordStore, current_operator, open_store

ROOT = Path(__file__).resolve().parents[2]


def _record(i: int = 0, **kw) -> Record:
    base = dict(operation="flash", result="ok", port=f"/dev/ttyACM{i}", board="nano33ble",
                usb_serial=f"SER{i:04d}", backend="smp", artifact="model.tflite",
                artifact_sha256="ab" * 32, artifact_size=1000 + i, verify="sha256 match",
                duration_s=1.5 + i, details={"throughput_Bps": 1234.5, "i": i})
    base.update(kw)
    return Record(**base)


def test_add_and_list_roundtrip_in_the_data_dir() -> None:
    store = open_store()
    assert store.path == paths.data_dir() / "records.sqlite"
    ids = [store.add(_record(i)) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    listed = store.list()
    assert [r.id for r in listed] == ids[::-1]  # newest first
    newest = listed[0]
    assert newest.usb_serial == "SER0002" and newest.artifact_size == 1002
    assert newest.details == {"throughput_Bps": 1234.5, "i": 2}
    assert newest.time and newest.time.endswith("+00:00")
    assert newest.host and newest.operator


def test_wal_and_full_sync_are_in_force() -> None:
    store = open_store()
    store.add(_record())
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with store._connect() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_operator_comes_from_env_then_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYOPS_OPERATOR", raising=False)
    (paths.config_dir() / "settings.json").write_text(json.dumps({"operator": "Ana"}))
    assert current_operator() == "Ana"
    monkeypatch.setenv("TINYOPS_OPERATOR", "Bo")
    assert current_operator() == "Bo"
    store = open_store()
    store.add(_record())
    assert store.list()[0].operator == "Bo"


def test_filters_and_limit() -> None:
    store = open_store()
    for i in range(5):
        store.add(_record(i, operation="flash" if i % 2 else "validate"))
    assert len(store.list(limit=2)) == 2
    assert {r.operation for r in store.list(operation="validate")} == {"validate"}
    assert [r.usb_serial for r in store.list(usb_serial="SER0003")] == ["SER0003"]


def test_empty_store_lists_nothing_without_creating_a_file(tmp_path: Path) -> None:
    store = RecordStore(tmp_path / "none.sqlite")
    assert store.list() == []
    assert not store.path.exists()


def test_export_csv_has_every_row_oldest_first(tmp_path: Path) -> None:
    store = open_store()
    for i in range(4):
        store.add(_record(i, error=None if i else "boom, with a comma\nand a newline"))
    out = tmp_path / "records.csv"
    assert store.export_csv(out) == 4
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0].keys()) == COLUMNS
    assert [r["usb_serial"] for r in rows] == [f"SER{i:04d}" for i in range(4)]
    assert rows[0]["error"] == "boom, with a comma\nand a newline"
    assert json.loads(rows[2]["details"]) == {"throughput_Bps": 1234.5, "i": 2}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60), size=st.integers(min_value=0, max_value=2**40),
       dur=st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_any_text_roundtrips(tmp_path: Path, text: str, size: int, dur: float) -> None:
    store = RecordStore(tmp_path / "h.sqlite")
    rid = store.add(_record(artifact=text, error=text, artifact_size=size, duration_s=dur,
                            details={"t": text}))
    back = next(r for r in store.list() if r.id == rid)
    assert (back.artifact, back.error, back.artifact_size, back.duration_s) == (text, text, size,
                                                                               dur)
    assert back.details == {"t": text}


def test_concurrent_writers_from_threads_lose_nothing() -> None:
    store = open_store()
    errors: list[BaseException] = []

    def work(k: int) -> None:
        try:
            for j in range(10):
                store.add(_record(k * 100 + j))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(store.list()) == 40


_WRITER = r"""
import sys
from fleet_ops.records import Record, RecordStore
store = RecordStore(sys.argv[1])
i = 0
while True:
    rid = store.add(Record(operation="flash", result="ok", port="p%d" % i,
                           usb_serial="S%d" % i, artifact_size=i, details={"i": i}))
    print(rid, i, flush=True)
    i += 1
"""


def test_committed_rows_survive_sigkill_mid_write(tmp_path: Path) -> None:
    db = tmp_path / "kill.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(db)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    committed: dict[int, int] = {}
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            rid, i = map(int, line.split())
            committed[rid] = i
            if len(committed) >= 60:
                break
        os.kill(proc.pid, signal.SIGKILL)  # mid-loop: very likely inside an INSERT/commit
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = {r.id: r for r in RecordStore(db).list()}
    for rid, i in committed.items():  # every row whose commit returned is there, intact
        assert rid in rows
        assert (rows[rid].port, rows[rid].usb_serial, rows[rid].artifact_size) == (
            f"p{i}", f"S{i}", i)
        assert rows[rid].details == {"i": i}
    # and the store keeps working after the crash
    RecordStore(db).add(_record())


def test_threads_writing_to_a_new_database_lose_nothing(tmp_path) -> None:
    """Station mode writes from several threads at once, often into a brand-new file."""
    import threading as _threading

    from fleet_ops.records import Record, RecordStore

    for attempt in range(10):
        store = RecordStore(tmp_path / f"r{attempt}.sqlite")
        start = _threading.Barrier(6)

        def write(i: int, store: RecordStore = store, start=start) -> None:
            start.wait()
            store.add(Record(operation="flash", result="ok", port=f"/dev/fake{i}"))

        threads = [_threading.Thread(target=write, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(r.port for r in store.list()) == [f"/dev/fake{i}" for i in range(6)]
