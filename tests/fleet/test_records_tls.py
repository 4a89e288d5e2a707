"""Records over TLS to a real PostgreSQL with a throwaway CA: ``sslmode=verify-full`` with the
CA works (the server says the session is encrypted), an unknown CA is a one-line refusal,
the password comes from $PGPASSWORD and shows nowhere."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fleet_servers import PG_DB, PG_PASSWORD, Postgres, error_lines
from pki import Pki

from app.cli import main
from fleet_ops.records import Record
from fleet_ops.records.pg import SharedRecordStore


@pytest.fixture
def tls_postgres(postgres: Postgres, tmp_path: Path) -> Iterator[tuple[Postgres, Pki]]:
    pki = Pki(tmp_path)
    crt, key = pki.server  # type: ignore[attr-defined]
    files = []
    for src, name in ((crt, "server.crt"), (key, "server.key")):
        dest = postgres.dir / name
        shutil.copy(src, dest)
        dest.chmod(0o600)
        if postgres.as_root:
            shutil.chown(dest, "postgres", "postgres")
        files.append(dest)
    postgres.stop()
    postgres.extra_opts = f"-c ssl=on -c ssl_cert_file={files[0]} -c ssl_key_file={files[1]}"
    postgres.start()
    try:
        yield postgres, pki
    finally:
        postgres.stop()
        postgres.extra_opts = ""
        postgres.start()


def test_records_over_tls_with_a_test_ca(tls_postgres: tuple[Postgres, Pki],
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         caplog: pytest.LogCaptureFixture) -> None:
    pg, pki = tls_postgres
    monkeypatch.setenv("PGPASSWORD", PG_PASSWORD)
    base = f"postgresql://tinyops@127.0.0.1:{pg.port}/{PG_DB}?sslmode=verify-full"
    url = f"{base}&sslrootcert={pki.ca}"
    store = SharedRecordStore(url=url)
    assert store.add(Record(operation="flash", result="ok", port="tls")) > 0
    with store._pg() as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
                            ).fetchone() == (True,)
    store.close()
    assert main(["--records", url, "records", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 1
    # a server certificate from an unknown CA: refused, one line, the record waits
    wrong = f"{base}&sslrootcert={pki.other_ca}"
    assert main(["--records", wrong, "records"]) == 1
    cap = capsys.readouterr()
    err = error_lines(cap.err)
    assert "certificate verify failed" in err[0] and len(err) == 2, err
    assert PG_PASSWORD not in cap.out + cap.err + caplog.text
