"""Helpers for the model-update tests: a real Mosquitto (from ``tests/fleet/fleet_servers.py``),
models as bytes, and waiting on a condition with a generous deadline."""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_FLEET_TESTS = str(Path(__file__).resolve().parent.parent / "fleet")
if _FLEET_TESTS not in sys.path:
    sys.path.insert(0, _FLEET_TESTS)

from fleet_servers import Mosquitto, running_mosquitto  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_MODEL = ROOT / "resources" / "examples" / "vibration" / "model_int8.tflite"

__all__ = ["BUNDLED_MODEL", "Mosquitto", "broker", "model_bytes", "sha", "wait_for"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def model_bytes(size: int, seed: int) -> bytes:
    """``size`` deterministic pseudo-random bytes (a model as the swarm sees it)."""
    out = bytearray()
    block = seed.to_bytes(8, "big")
    while len(out) < size:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:size])


def wait_for(predicate: Callable[[], object], timeout: float, what: str,
             poll: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(poll)
    if not predicate():
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


@contextmanager
def broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as server:
        yield server
