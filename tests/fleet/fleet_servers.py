"""Real servers for the fleet tests: a throwaway PostgreSQL cluster and a Mosquitto broker.

Both run from the machine's own binaries (Debian's ``postgresql`` and ``mosquitto``
packages) on a free port with their files in a temporary directory, and are stopped after.
Missing binaries skip the tests locally and fail them in CI (``CI=true``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ci_guard import unavailable

PG_USER, PG_PASSWORD, PG_DB = "tinyops", "s3cret", "tinyops"


def missing(what: str) -> None:
    unavailable(f"{what} is not installed (apt-get install postgresql mosquitto)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {timeout} s")


class Postgres:
    """A cluster made by ``initdb``: local socket trusted, TCP needs the password."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="tinyops-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.extra_opts = ""  # more ``-c name=value`` for the next start (TLS tests)
        if self.as_root:  # initdb refuses root: the cluster belongs to the postgres user
            shutil.chown(self.dir, "postgres", "postgres")

    def _run(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        full = ["runuser", "-u", "postgres", "--", *cmd] if self.as_root else list(cmd)
        return subprocess.run(full, capture_output=True, text=True, timeout=60, check=True,
                              cwd=self.dir)

    def init(self) -> None:
        pwfile = self.dir / "pw"
        pwfile.write_text("unused\n")
        if self.as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                  "--no-sync", f"--pwfile={pwfile}")
        self.start()
        self.psql(f"CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'")
        self.psql(f"CREATE DATABASE {PG_DB} OWNER {PG_USER}")

    def start(self) -> None:
        # fsync off: the tests stop the server cleanly (a fast shutdown still writes
        # everything committed); only a power cut would need fsync.
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c max_connections=60 {self.extra_opts}")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w",
                  "-l", str(self.dir / "log"), "start")

    def stop(self) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def psql(self, sql: str, db: str = "postgres") -> str:
        return self._run(str(self.bindir / "psql"), "-h", str(self.dir), "-p", str(self.port),
                         "-U", "postgres", "-d", db, "-XAtq", "-v", "ON_ERROR_STOP=1",
                         "-c", sql).stdout

    def url(self, password: str = PG_PASSWORD, db: str = PG_DB) -> str:
        return f"postgresql://{PG_USER}:{password}@127.0.0.1:{self.port}/{db}"

    def reset(self) -> None:
        self.psql("DROP TABLE IF EXISTS tinyops_records, tinyops_schema", db=PG_DB)

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class Mosquitto:
    """``conf``: extra lines for ``mosquitto.conf`` (its default listener is replaced when
    ``listener`` lines are given)."""

    def __init__(self, binary: str, conf: str = "") -> None:
        self.binary = binary
        self.dir = Path(tempfile.mkdtemp(prefix="tinyops-mqtt-"))
        self.port = free_port()
        self.conf = conf
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        conf = self.dir / "mosquitto.conf"
        listener = "" if "listener" in self.conf else \
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
        conf.write_text(f"{listener}persistence false\nlog_dest stderr\n{self.conf}\n")
        self.proc = subprocess.Popen([self.binary, "-c", str(conf)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=(self.dir / "log").open("ab"))
        wait_port(self.port)

    def kill(self) -> None:
        """SIGKILL: the broker dies without a word (what it held in memory is gone)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


def mosquitto_binary() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None)


def error_lines(stderr: str) -> list[str]:
    """The CLI's error report: from its ``error:`` line on (a console log handler that an
    earlier test's ``main()`` bound to its own, now closed, captured stream may add noise
    before it)."""
    lines = stderr.strip().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("error: "))
    return lines[start:]


@contextlib.contextmanager
def running_mosquitto(conf: str = "", start: bool = True) -> Iterator[Mosquitto]:
    """A throwaway Mosquitto on a free loopback port (skipped locally if missing, a failure in
    CI); stopped on exit. The one way every test module starts its broker. ``conf``: extra
    configuration; ``start=False``: the caller starts it (a station started first)."""
    binary = mosquitto_binary()
    if binary is None:
        missing("Mosquitto")
    broker = Mosquitto(binary, conf)  # type: ignore[arg-type]
    if start:
        broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def running_postgres() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster (initdb as the ``postgres`` user when root), destroyed
    on exit; skipped locally if missing, a failure in CI. The one way test packages get one."""
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL (initdb)")
    server = Postgres(bindir)  # type: ignore[arg-type]
    try:
        server.init()
        yield server
    finally:
        server.destroy()


def started(server: Postgres) -> Postgres:
    """``server``, running again if a test stopped (or killed) it."""
    try:
        server.psql("SELECT 1")
    except Exception:
        server.start()
    return server
