"""The virtual board on MQTT (``tinyops sim --mqtt URL --device-id ID``): every telemetry line
it makes is also published to the fleet, and its machine can be told to drift.

:class:`MixSchedule` replaces the board's state schedule: the machine condition is drawn
anew every ``dwell_s`` with fixed weights (normal, imbalance, bearing_fault). Equal weights
match the balanced evaluation data the bundled model's baseline comes from (a steady
board); :data:`DRIFT_MIX` is a machine that is mostly failing (a drifting one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from device_drivers.errors import InputError
from device_drivers.virtual.signal import STATES

DRIFT_MIX = (0.1, 0.1, 0.8)
STEADY_MIX = (1.0, 1.0, 1.0)


class MixSchedule:
    def __init__(self, weights: Sequence[float], seed: int = 0, dwell_s: float = 0.05) -> None:
        if len(weights) != len(STATES) or min(weights) < 0 or sum(weights) <= 0:
            raise InputError(f"condition mix needs {len(STATES)} weights >= 0, not all 0",
                             "e.g. --condition-mix 1,1,1 (normal, imbalance, bearing_fault)")
        total = float(sum(weights))
        self.p = [w / total for w in weights]
        self.dwell_s = dwell_s
        self._rng = np.random.default_rng(seed + 7)
        self._slot = -1
        self._state = 0

    def state_at(self, t: float) -> int:
        slot = int(t / self.dwell_s)
        if slot != self._slot:
            self._slot = slot
            self._state = int(self._rng.choice(len(STATES), p=self.p))
        return self._state


def parse_mix(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise InputError(f"bad condition mix {text!r}",
                         "give three weights: normal,imbalance,bearing_fault (e.g. 1,1,1)") from exc


def set_mix(board: Any, weights: Sequence[float], seed: int = 0) -> None:
    """Make a started board's machine follow ``weights``."""
    rt = board.runtime
    with rt._lock:
        rt.schedule = MixSchedule(weights, seed)


def attach(board: Any, publisher: Any,
           transform: Callable[[bytes], bytes] | None = None) -> None:
    """Publish every telemetry line of ``board`` (the serial port keeps getting them too),
    through ``transform`` if given (``tinyops sim --after-update slow``)."""

    def hook(line: bytes) -> None:
        sha = board.loaded_model_sha256
        if sha != publisher.info.get("model_sha256"):  # flashed: the status says so at once
            publisher.status(model_sha256=sha)
        publisher.telemetry(transform(line) if transform is not None else line)

    board.telemetry_hooks.append(hook)
