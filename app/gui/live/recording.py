"""Record live telemetry to CSV and replay a recording (no Qt here).

The file format is the core's (``device_drivers.recording``: long format ``t,channel,value``),
so a recording made here replays in ``tinyops`` tools and vice versa.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from device_drivers.errors import InputError
from device_drivers.recording import TelemetryRecorder, read_recording

_HINT = "pick a CSV recorded by TinyOps (Live page, Record; or `tinyops monitor --record`)"


def open_recorder(path: str | Path) -> TelemetryRecorder:
    try:
        return TelemetryRecorder(path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}",
                         "pick a folder you can write to") from exc


@dataclass
class Recording:
    """A recording in memory: channel → (t seconds, values), each sorted by time."""

    channels: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def start(self) -> float:
        return min((float(t[0]) for t, _ in self.channels.values() if len(t)), default=0.0)

    @property
    def end(self) -> float:
        return max((float(t[-1]) for t, _ in self.channels.values() if len(t)), default=0.0)

    @property
    def samples(self) -> int:
        return sum(len(t) for t, _ in self.channels.values())


def load_recording(path: str | Path) -> Recording:
    path = Path(path)
    try:
        raw = read_recording(path)
    except FileNotFoundError:
        raise InputError(f"{path} does not exist", _HINT) from None
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not a text CSV file", _HINT) from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}", _HINT) from exc
    except ValueError as exc:
        raise InputError(f"{path.name} is not a TinyOps telemetry recording", _HINT) from exc
    rec = Recording()
    for name, (t, v) in raw.items():
        order = np.argsort(t, kind="stable")
        rec.channels[name] = (t[order], v[order])
    if rec.samples == 0:
        raise InputError(f"{path.name} holds no samples", _HINT)
    return rec


@dataclass
class ReplayBatch:
    """TelemetryBatch-shaped chunk of a recording."""

    channels: dict[str, tuple[np.ndarray, np.ndarray]]
    lines: list[str] = field(default_factory=list)
    top_label: str | None = None
    parsed: int = 0
    dropped: int = 0
    format: str | None = "replay"


def replay(rec: Recording, push: Callable[[Any], Any], stop: threading.Event,
           speed: float = 1.0, tick_s: float = 0.02) -> int:
    """Push the recording in batches at its own pace (``speed`` × real time). Blocks."""
    start = rec.start
    t_wall0 = time.monotonic()
    cursors = dict.fromkeys(rec.channels, 0)
    pushed = 0
    while not stop.is_set():
        upto = start + (time.monotonic() - t_wall0) * speed
        chans = {}
        done = True
        for name, (t, v) in rec.channels.items():
            i = cursors[name]
            j = int(np.searchsorted(t, upto, side="right"))
            if j > i:
                chans[name] = (t[i:j], v[i:j])
                cursors[name] = j
            if j < len(t):
                done = False
        if chans:
            n = sum(len(c[0]) for c in chans.values())
            pushed += n
            push(ReplayBatch(chans, parsed=n))
        if done:
            break
        stop.wait(tick_s)
    return pushed
