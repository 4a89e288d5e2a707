"""Records against a PostgreSQL that fails the way servers do: a lock held on the table,
the server process stopped (SIGSTOP), killed, a wrong URL, a read-only role and a
least-privilege role. Every verified flash ends with exactly one record on the server, the
exit code tells the truth, and no password appears in any output or log."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fleet_servers import PG_DB, PG_PASSWORD, Postgres

from app.cli import main
from device_drivers import paths
from device_drivers.virtual import VirtualBoard
from fleet_ops.records import Record
from fleet_ops.records import pg as records_pg
from fleet_ops.records.pg import SharedRecordStore

ROOT = Path(__file__).resolve().parents[2]
MODEL = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()
WRITER_PW, READER_PW = "wr1ter-Pw-77", "re4der-Pw-88"
SECRETS = (PG_PASSWORD, WRITER_PW, READER_PW)


class Outputs:
    """Everything the tests printed or logged, to be searched for passwords at the end."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *texts: str) -> None:
        self.texts.extend(texts)

    def check(self, home: Path) -> None:
        logs = [p.read_text(errors="replace") for p in home.rglob("*.log*") if p.is_file()]
        everything = "\n".join(self.texts + logs)
        assert everything.strip()
        for secret in SECRETS:
            assert secret not in everything


@pytest.fixture
def outputs(tinyops_home: Path, capsys: pytest.CaptureFixture[str],
            caplog: pytest.LogCaptureFixture) -> Iterator[Outputs]:
    out = Outputs()
    yield out
    captured = capsys.readouterr()
    out.add(captured.out, captured.err, caplog.text)
    out.check(tinyops_home)


def _model(tmp_path: Path, n: int) -> tuple[Path, str]:
    data = MODEL + b"\x00" * (16 * n)
    path = tmp_path / f"m{n}.tflite"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _flash(board: VirtualBoard, model: Path, capsys: pytest.CaptureFixture[str],
           outputs: Outputs, *extra: str) -> tuple[int, dict, str]:
    code = main([*extra, "flash", str(model), "--port", board.port, "--json"])
    cap = capsys.readouterr()
    outputs.add(cap.out, cap.err)
    lines = [json.loads(x) for x in cap.out.splitlines() if x.startswith("{")]
    return code, (lines[-1] if lines else {}), cap.err


def _server_uids(pg: Postgres) -> list[str]:
    return [x for x in pg.psql("SELECT uid FROM tinyops_records WHERE operation='flash'",
                               db=PG_DB).split("\n") if x]


def _deliver(capsys: pytest.CaptureFixture[str], outputs: Outputs) -> dict:
    assert main(["records", "--json", "--limit", "0"]) == 0
    cap = capsys.readouterr()
    outputs.add(cap.out, cap.err)
    return json.loads(cap.out.strip().splitlines()[-1])  # after the test's own prints


def _forget_failures() -> None:
    """Make the next automatic delivery try at once (not 5 s after the last failure)."""
    import sqlite3
    from contextlib import closing

    from fleet_ops.records.outbox import outbox_path

    if outbox_path().exists():
        with closing(sqlite3.connect(outbox_path())) as conn, conn:
            conn.execute("DELETE FROM meta WHERE key='retry_after'")


def _cluster_pids(pg: Postgres) -> list[int]:
    main_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(main_pid)],
                              capture_output=True, text=True).stdout.split()
    return [main_pid, *map(int, children)]


def test_table_lock_and_stopped_server_queue_the_record(
        postgres: Postgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], outputs: Outputs) -> None:
    monkeypatch.setenv("TINYOPS_RECORDS_URL", postgres.url())
    SharedRecordStore().migrate()  # the owner creates the schema
    flashed = []
    with VirtualBoard(board="virtual") as vb:
        with psycopg.connect(postgres.url()) as holder:  # another client holds the table
            holder.execute("LOCK TABLE tinyops_records IN ACCESS EXCLUSIVE MODE")
            for n in (1, 2):
                _forget_failures()  # each flash really tries the server
                started = time.monotonic()
                code, out, err = _flash(vb, _model(tmp_path, n)[0], capsys, outputs)
                assert code == 0 and out["ok"], err
                took = time.monotonic() - started
                with capsys.disabled():
                    print(f"table locked: flash {n} exit {code} in {took:.1f} s, queued")
                assert took < 25  # bounded: it used to wait as long as the lock was held
                assert "queued in this station's outbox" in err
                flashed.append(out["device_digest"])
            assert holder.execute("SELECT count(*) FROM tinyops_records").fetchone() == (0,)
        pids = _cluster_pids(postgres)
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            _forget_failures()
            started = time.monotonic()
            code, out, err = _flash(vb, _model(tmp_path, 3)[0], capsys, outputs)
            assert code == 0 and "queued" in err, err
            took = time.monotonic() - started
            with capsys.disabled():
                print(f"server stopped: flash exit {code} in {took:.1f} s, record queued")
            assert took < 25
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
    status = _deliver(capsys, outputs)
    assert (status["delivered"], status["pending"]) == (3, 0)
    uids = _server_uids(postgres)
    assert len(uids) == len(set(uids)) == 3


def test_stopped_server_cuts_an_open_connection(postgres: Postgres,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A long-running process (bridge, GUI) with its connection open when the server stops
    answering: the client-side deadline cuts it, the record waits, and goes later."""
    monkeypatch.setattr(records_pg, "ROUND_TRIP_S", 3.0)
    store = SharedRecordStore(url=postgres.url())
    assert store.add(Record(operation="flash", result="ok", port="p0")) > 0
    pids = _cluster_pids(postgres)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        assert store.add(Record(operation="flash", result="ok", port="p1")) == 0
        assert time.monotonic() - started < 10
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    assert store.deliver() == 1 and store.pending_count() == 0
    assert len(store.list()) == 2
    store.close()


def test_killed_server_then_restarted(postgres: Postgres, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str],
                                     outputs: Outputs) -> None:
    monkeypatch.setenv("TINYOPS_RECORDS_URL", postgres.url())
    with VirtualBoard(board="virtual") as vb:
        assert _flash(vb, _model(tmp_path, 4)[0], capsys, outputs)[0] == 0
        postgres._run(str(postgres.bindir / "pg_ctl"), "-D", str(postgres.data), "-m",
                      "immediate", "-w", "stop")  # a crash: no shutdown checkpoint
        try:
            code, out, err = _flash(vb, _model(tmp_path, 5)[0], capsys, outputs)
            assert code == 0 and out["ok"] and "queued" in err
        finally:
            postgres.start()
    _deliver(capsys, outputs)
    uids = _server_uids(postgres)
    assert len(uids) == len(set(uids)) == 2


def test_wrong_url_stops_before_the_board_is_touched(
        postgres: Postgres, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        outputs: Outputs) -> None:
    model, digest = _model(tmp_path, 6)
    good = postgres.url()
    with VirtualBoard(board="virtual") as vb:
        before = vb.loaded_model_sha256
        for bad in (good.replace("postgresql://", "postgresq://"),
                    good.replace(f":{postgres.port}/", ":54x2/"),
                    good.replace(f":{PG_PASSWORD}@", f":{PG_PASSWORD}%zz@")):
            code, _, err = _flash(vb, model, capsys, outputs, "--records", bad)
            assert code == 2, err
            assert "records URL" in err and vb.loaded_model_sha256 == before
        # a port nothing listens on is only known by trying: the record waits, exit 0
        wrong_port = good.replace(f":{postgres.port}/", ":9/")
        code, out, err = _flash(vb, model, capsys, outputs, "--records", wrong_port)
        assert code == 0 and out["device_digest"] == digest and "queued" in err
    assert main(["--records", wrong_port, "records"]) == 1
    capsys.readouterr()
    assert main(["--records", good, "records", "--json"]) == 0
    outputs.add(capsys.readouterr().out)
    assert len(_server_uids(postgres)) == 1


def _roles(pg: Postgres) -> None:
    for role, pw in (("tinyops_writer", WRITER_PW), ("tinyops_reader", READER_PW)):
        pg.psql(f"DO $$BEGIN CREATE ROLE {role} LOGIN PASSWORD '{pw}'; "
                "EXCEPTION WHEN duplicate_object THEN NULL; END$$")


def _role_url(pg: Postgres, role: str) -> str:
    return f"postgresql://{role}@127.0.0.1:{pg.port}/{PG_DB}"  # the password from the env


def test_least_privilege_and_read_only_roles(postgres: Postgres, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str],
                                             outputs: Outputs) -> None:
    _roles(postgres)
    postgres.psql("REVOKE CREATE ON SCHEMA public FROM PUBLIC", db=PG_DB)
    writer = _role_url(postgres, "tinyops_writer")
    monkeypatch.setenv("PGPASSWORD", WRITER_PW)
    with VirtualBoard(board="virtual") as vb:
        # no schema yet and the role may not create it: a clear line, the record waits
        code, out, err = _flash(vb, _model(tmp_path, 7)[0], capsys, outputs,
                                "--records", writer)
        assert code == 0 and out["ok"] and "queued" in err, err
        assert main(["--records", writer, "records"]) == 1
        cap = capsys.readouterr()
        outputs.add(cap.out, cap.err)
        assert "needs its schema created" in cap.err and "Traceback" not in cap.err
        # the owner migrates once (its password from a PGPASSFILE) and grants
        passfile = tmp_path / "pgpass"
        passfile.write_text(f"127.0.0.1:{postgres.port}:{PG_DB}:tinyops:{PG_PASSWORD}\n")
        passfile.chmod(0o600)
        monkeypatch.setenv("PGPASSFILE", str(passfile))
        monkeypatch.delenv("PGPASSWORD")
        owner = f"postgresql://tinyops@127.0.0.1:{postgres.port}/{PG_DB}"
        assert main(["--records", owner, "records", "--json"]) == 0
        outputs.add(capsys.readouterr().out)
        postgres.psql(
            "GRANT USAGE ON SCHEMA public TO tinyops_writer, tinyops_reader; "
            "GRANT SELECT, INSERT ON tinyops_records TO tinyops_writer; "
            "GRANT SELECT ON tinyops_schema TO tinyops_writer, tinyops_reader; "
            "GRANT USAGE ON SEQUENCE tinyops_records_id_seq TO tinyops_writer; "
            "GRANT SELECT ON tinyops_records TO tinyops_reader", db=PG_DB)
        monkeypatch.delenv("PGPASSFILE")
        monkeypatch.setenv("PGPASSWORD", WRITER_PW)
        code, out, err = _flash(vb, _model(tmp_path, 8)[0], capsys, outputs,
                                "--records", writer)
        assert code == 0 and out["ok"] and "queued" not in err, err
        assert len(_server_uids(postgres)) == 2  # its own and the one that waited
        # a read-only role: the server refuses the insert, the record waits, exit 0
        monkeypatch.setenv("PGPASSWORD", READER_PW)
        reader = _role_url(postgres, "tinyops_reader")
        code, out, err = _flash(vb, _model(tmp_path, 9)[0], capsys, outputs,
                                "--records", reader)
        assert code == 0 and out["ok"] and "queued" in err, err
    monkeypatch.setenv("PGPASSWORD", WRITER_PW)
    assert _deliver_with(writer, capsys, outputs)["pending"] == 0
    uids = _server_uids(postgres)
    assert len(uids) == len(set(uids)) == 3


def _deliver_with(url: str, capsys: pytest.CaptureFixture[str], outputs: Outputs) -> dict:
    assert main(["--records", url, "records", "--json"]) == 0
    cap = capsys.readouterr()
    outputs.add(cap.out, cap.err)
    return json.loads(cap.out)


def test_two_flashes_at_once_while_the_table_is_locked(postgres: Postgres, tmp_path: Path,
                                                       tinyops_home: Path) -> None:
    """Two processes of one station: neither waits on the other's SQLite lock."""
    SharedRecordStore(url=postgres.url()).migrate()
    env = dict(os.environ, TINYOPS_RECORDS_URL=postgres.url())
    with VirtualBoard(board="virtual") as a, VirtualBoard(board="virtual", seed=1) as b, \
            psycopg.connect(postgres.url()) as holder:
        holder.execute("LOCK TABLE tinyops_records IN ACCESS EXCLUSIVE MODE")
        procs = [subprocess.Popen([sys.executable, "-m", "app.cli", "flash",
                                   str(_model(tmp_path, 10 + i)[0]), "--port", vb.port],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for i, vb in enumerate((a, b))]
        results = [p.communicate(timeout=120) for p in procs]
        holder.rollback()
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, err
        assert "queued" in err and "database is locked" not in err
        assert PG_PASSWORD not in out + err
    SharedRecordStore(url=postgres.url()).deliver()
    uids = _server_uids(postgres)
    assert len(uids) == len(set(uids)) == 2


def test_waiting_records_go_in_the_background(postgres: Postgres,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """While the app runs (GUI, bridge), records made during an outage arrive by themselves."""
    from fleet_ops.records import pending_count
    from fleet_ops.records.delivery import BackgroundDelivery

    monkeypatch.setenv("TINYOPS_RECORDS_URL", postgres.url())
    store = SharedRecordStore()
    store.migrate()
    postgres.stop()
    try:
        for i in range(5):
            assert store.add(Record(operation="flash", result="ok", port=f"p{i}")) == 0
    finally:
        postgres.start()
    assert pending_count() == 5
    delivery = BackgroundDelivery(interval_s=0.2).start()
    try:
        deadline = time.monotonic() + 30  # the retry pause after a failure, then delivery
        while pending_count():
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        delivery.stop()
    assert len(_server_uids(postgres)) == 5
    store.close()
