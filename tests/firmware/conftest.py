"""``firmware(name)``: start a real Zephyr SMP-server fixture for one test (see zephyr.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import zephyr_fixtures as zephyr
from ci_guard import unavailable


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/firmware/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.firmware)


@pytest.fixture
def firmware() -> Iterator[Callable[..., zephyr.Firmware]]:
    """Factory: ``fw = firmware("native_sim_serial_fs")``; every started fixture is stopped."""
    stack: list = []

    def start(name: str, ready_timeout_s: float = 30.0) -> zephyr.Firmware:
        cm = zephyr.start(name, ready_timeout_s)
        try:
            fw = cm.__enter__()
        except zephyr.Unavailable as exc:
            unavailable(str(exc))
        stack.append(cm)
        return fw

    yield start
    while stack:
        stack.pop().__exit__(None, None, None)


