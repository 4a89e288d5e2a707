"""Rollout tests: the fleet tests' real servers (``tests/fleet/fleet_servers.py``: a throwaway
PostgreSQL cluster and Mosquitto), and a clean rollout database per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fleet"))

from fleet_servers import (
    Mosquitto,
    Postgres,
    missing,
    postgres_bindir,
    running_mosquitto,
)

ROLLOUT_TABLES = "rollouts, rollout_devices, rollout_events, rollout_holders, rollout_schema"


@pytest.fixture(scope="session")
def rollout_pg_server() -> Iterator[Postgres]:
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
def rollout_pg(rollout_pg_server: Postgres) -> Postgres:
    """The session's server, started (a test may have stopped it), without rollout tables."""
    try:
        rollout_pg_server.psql("SELECT 1")
    except Exception:
        rollout_pg_server.start()
    rollout_pg_server.psql(f"DROP TABLE IF EXISTS {ROLLOUT_TABLES}", db="tinyops")
    return rollout_pg_server


@pytest.fixture
def rollout_broker() -> Iterator[Mosquitto]:
    """A broker of the test's own (tests kill and restart it)."""
    with running_mosquitto() as server:
        yield server
