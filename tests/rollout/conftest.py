"""Rollout tests: the fleet tests' real servers (``tests/fleet/fleet_servers.py``: a throwaway
PostgreSQL cluster and Mosquitto), and a clean rollout database per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "fleet"))

from fleet_servers import Mosquitto, Postgres, running_mosquitto, running_postgres, started

ROLLOUT_TABLES = "rollouts, rollout_devices, rollout_events, rollout_holders, rollout_schema"


@pytest.fixture(scope="session")
def rollout_pg_server() -> Iterator[Postgres]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def rollout_pg(rollout_pg_server: Postgres) -> Postgres:
    """The session's server, started (a test may have stopped it), without rollout tables."""
    started(rollout_pg_server).psql(f"DROP TABLE IF EXISTS {ROLLOUT_TABLES}", db="tinyops")
    return rollout_pg_server


@pytest.fixture
def rollout_broker() -> Iterator[Mosquitto]:
    """A broker of the test's own (tests kill and restart it)."""
    with running_mosquitto() as server:
        yield server


@pytest.fixture(autouse=True)
def _scenario_times(request: pytest.FixtureRequest) -> Iterator[None]:
    """Scenario times a test put in its module's ``TIMES`` (shown with ``-s``)."""
    yield
    times = getattr(request.module, "TIMES", None)
    if times:
        for name, seconds in sorted(times.items()):
            print(f"\nTIME {name}: {seconds:.1f} s")
        times.clear()
