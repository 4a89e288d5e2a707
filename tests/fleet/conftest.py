"""Session-scoped real servers (see ``fleet_servers.py``); each test gets a clean records table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fleet_servers import Mosquitto, Postgres, missing, postgres_bindir, running_mosquitto


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    bindir = postgres_bindir()
    if bindir is None:
        missing("PostgreSQL (initdb)")
    server = Postgres(bindir)  # type: ignore[arg-type]
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def postgres(postgres_server: Postgres) -> Postgres:
    """The session's server, started (a test may have stopped it) and with no records."""
    try:
        postgres_server.psql("SELECT 1")
    except Exception:
        postgres_server.start()
    postgres_server.reset()
    return postgres_server


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    with running_mosquitto() as server:
        yield server
