"""Session-scoped real servers (see ``fleet_servers.py``); each test gets a clean records table."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fleet_servers import Mosquitto, Postgres, running_mosquitto, running_postgres, started


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres(postgres_server: Postgres) -> Postgres:
    """The session's server, started (a test may have stopped it) and with no records."""
    started(postgres_server).reset()
    return postgres_server


@pytest.fixture(scope="session")
def mosquitto() -> Iterator[Mosquitto]:
    with running_mosquitto() as server:
        yield server
