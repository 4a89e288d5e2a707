"""Shared records on a real PostgreSQL: same behaviour as SQLite, stations, outbox, errors."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fleet_servers import Postgres, error_lines

from app.cli import main
from fleet_ops.records import COLUMNS, Record, RecordStore, open_store, pending_count
from fleet_ops.records.outbox import Outbox
from fleet_ops.records.pg import SharedRecordStore
from fleet_ops.records.uuid7 import timestamp_ms, uuid7

ROOT = Path(__file__).resolve().parents[2]


def _rec(i: int, **kw: object) -> Record:
    base: dict[str, object] = dict(operation="flash", result="ok", port=f"/dev/ttyACM{i}",
                                   usb_serial=f"SER{i:04d}", backend="smp",
                                   artifact="model.tflite", artifact_sha256="ab" * 32,
                                   artifact_size=1000 + i, duration_s=1.5, details={"i": i})
    base.update(kw)
    return Record(**base)  # type: ignore[arg-type]


def test_uuid7_layout_and_order() -> None:
    ids = [uuid7() for _ in range(5000)]
    assert ids == sorted(ids, key=lambda u: u.int) and len(set(ids)) == 5000
    assert {u.version for u in ids} == {7} and {u.variant for u in ids} == {uuid.RFC_4122}
    before = time.time_ns() // 1_000_000
    made = uuid7()
    assert before <= timestamp_ms(made) <= time.time_ns() // 1_000_000 + 2  # +2: counter spill
    assert timestamp_ms(uuid7(now_ms=before - 10_000)) >= before  # never goes back in time


def test_postgres_store_behaves_like_sqlite(postgres: Postgres, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYOPS_RECORDS_URL", postgres.url())
    monkeypatch.setenv("TINYOPS_STATION", "line-1")
    pg, lite = open_store(), RecordStore(tmp_path / "local.sqlite")
    assert isinstance(pg, SharedRecordStore) and not isinstance(lite, SharedRecordStore)
    for store in (pg, lite):
        ids = [store.add(_rec(i, operation="flash" if i % 2 else "validate",
                              error="comma, \"quote\"\nnewline" if i == 0 else None))
               for i in range(4)]
        assert ids == sorted(ids) and all(ids)
    for store in (pg, lite):
        listed = store.list()
        assert [r.usb_serial for r in listed] == ["SER0003", "SER0002", "SER0001", "SER0000"]
        assert {r.station for r in listed} == {"line-1"}
        assert all(uuid.UUID(r.uid or "").version == 7 for r in listed)
        assert listed[-1].error == "comma, \"quote\"\nnewline" and listed[0].details == {"i": 3}
        assert [r.usb_serial for r in store.list(operation="validate")] == ["SER0002", "SER0000"]
        assert len(store.list(limit=3)) == 3 and len(store.list(usb_serial="SER0001")) == 1
    a, b = tmp_path / "pg.csv", tmp_path / "lite.csv"
    assert pg.export_csv(a) == lite.export_csv(b) == 4
    rows_a, rows_b = (list(csv.DictReader(p.open(newline=""))) for p in (a, b))
    assert tuple(rows_a[0]) == COLUMNS
    skip = {"id", "uid", "time", "host", "operator"}
    assert [{k: v for k, v in r.items() if k not in skip} for r in rows_a] == \
        [{k: v for k, v in r.items() if k not in skip} for r in rows_b]
    assert postgres.psql("SELECT max(version) FROM tinyops_schema", db="tinyops").strip() == "2"
    # a record sent twice (crash between the server's commit and the outbox's) is stored once
    again = pg.list(limit=1)[0]
    Outbox().put(str(again.uid), {c: getattr(again, c) for c in COLUMNS if c != "id"}
                 | {"details": "{}"})
    assert pg.deliver() == 1 and len(pg.list()) == 4
    pg.close()


STATION = """
import sys
from fleet_ops.records import Record, open_store
store = open_store()
for i in range(int(sys.argv[1])):
    store.add(Record(operation="flash", result="ok", port="p", details={"i": i}))
print(store.pending_count())
"""


def test_four_stations_share_one_database(postgres: Postgres, tmp_path: Path) -> None:
    n = 200
    procs = []
    for k in range(4):
        env = dict(os.environ, TINYOPS_HOME=str(tmp_path / f"s{k}"),
                   TINYOPS_STATION=f"station-{k}", TINYOPS_RECORDS_URL=postgres.url())
        procs.append(subprocess.Popen([sys.executable, "-c", STATION, str(n)], env=env,
                                      cwd=ROOT, stdout=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=240)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0] * 4 and outs == ["0"] * 4
    rows = postgres.psql("SELECT station, uid, details FROM tinyops_records ORDER BY id",
                         db="tinyops").split("\n")
    rows = [r.split("|") for r in rows if r]
    assert len(rows) == 4 * n and len({r[1] for r in rows}) == 4 * n  # none lost, none twice
    for k in range(4):  # in the order each station wrote them
        mine = [json.loads(r[2])["i"] for r in rows if r[0] == f"station-{k}"]
        assert mine == list(range(n))


def test_server_away_records_wait_then_arrive_once(postgres: Postgres,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("TINYOPS_RECORDS_URL", postgres.url())
    store = open_store()
    for i in range(10):
        store.add(_rec(i))
    postgres.stop()
    try:
        for i in range(10, 40):  # provisioning goes on: every record is kept locally
            assert store.add(_rec(i)) == 0
        assert pending_count() == 30
        assert main(["records"]) == 1
        err = error_lines(capsys.readouterr().err)
        assert "cannot reach the records server" in err[0] and "30 records waiting" in err[0]
        assert len(err) == 2 and err[1].startswith("  fix:")
    finally:
        postgres.start()
    capsys.readouterr()
    assert main(["records", "--json", "--limit", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["delivered"], out["pending"], out["count"]) == (30, 0, 40)
    assert [r["details"]["i"] for r in out["records"]] == list(range(39, -1, -1))
    assert postgres.psql("SELECT count(DISTINCT uid) FROM tinyops_records",
                         db="tinyops").strip() == "40"
    store.close()


def test_bad_url_and_refused_login_are_one_line(postgres: Postgres,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    cases = [(postgres.url(password="wrong"), 1, "refused the login"),
             (postgres.url(db="nosuchdb"), 1, "does not exist"),
             ("mysql://root@localhost/x", 2, "unsupported records URL"),
             ("postgresql://x@127.0.0.1:notaport/db", 2, "bad records URL")]
    for url, code, text in cases:
        assert main(["--records", url, "records"]) == code, url
        err = error_lines(capsys.readouterr().err)
        assert text in err[0] and "wrong" not in err[0] and err[1].startswith("  fix:"), err
        assert len(err) == 2
