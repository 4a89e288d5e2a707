"""Fixtures shared by the device driver tests."""

from __future__ import annotations

import contextlib
import os
import tty
from collections.abc import Iterator

import pytest


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A raw pseudo-terminal: (the far end's fd, the path a session opens)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    path = os.ttyname(slave)
    yield master, path
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)
