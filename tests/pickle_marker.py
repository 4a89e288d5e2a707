"""A pickle that proves it ran, for the tests that check a child's replies are never unpickled
(the TFLM sandbox and the virtual board's interpreter child)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any


class ExecutedPickle:
    """Unpickling this creates the marker file: proof that a pickle was executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return (open, (str(self.marker), "w"))


def evil_reply(marker: Path) -> bytes:
    """A pickled reply ``{"ok": True, ...}`` that creates ``marker`` when unpickled."""
    return pickle.dumps({"ok": True, "x": ExecutedPickle(marker)})
