"""Fixtures for the firmware core's host tests: the built binary and running boards."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import fw_host
import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "firmware_core" in str(item.fspath):
            item.add_marker(pytest.mark.firmware)


@pytest.fixture(scope="session")
def fw_cache(request: pytest.FixtureRequest) -> Path:
    return Path(request.config.cache.mkdir("tinyops-fw-host"))


@pytest.fixture(scope="session")
def host_binary(fw_cache: Path) -> Path:
    return fw_host.build(fw_cache, "host")


@pytest.fixture(scope="session")
def cbor_tool(fw_cache: Path) -> Path:
    return fw_host.build(fw_cache, "cbor_tool")


@pytest.fixture
def host_board(host_binary: Path, tmp_path: Path) -> Iterator[Callable[..., fw_host.HostBoard]]:
    """Factory: ``board = host_board()`` starts the host build on a fresh state directory
    (``host_board(state=dir)`` reuses one); every board started is stopped."""
    started: list[fw_host.HostBoard] = []

    def start(*args: str, state: Path | None = None) -> fw_host.HostBoard:
        board = fw_host.start(host_binary, state or tmp_path / f"state{len(started)}", *args)
        started.append(board)
        return board

    yield start
    for board in started:
        board.stop()


@pytest.fixture(scope="session")
def signal_tool(fw_cache: Path) -> Path:
    return fw_host.build(fw_cache, "signal_tool")
