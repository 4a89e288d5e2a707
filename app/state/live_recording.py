"""Record live telemetry to CSV and replay a recording (no Qt here).

The file format is the core's (``device_drivers.recording``: long format ``t,channel,value``),
so a recording made here replays in ``tinyops`` tools and vice versa.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device_drivers.errors import InputError
from device_drivers.recording import RecordingWriter, read_recording
from device_drivers.telemetry import TelemetryBatch

_HINT = "pick a CSV recorded by TinyOps (Live page, Record; or `tinyops monitor --record`)"


def open_recorder(path: str | Path) -> RecordingWriter:
    """A CSV recorder that writes on its own thread (the frame timer only queues)."""
    try:
        return RecordingWriter(path)
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


class ReplaySource:
    """A recording played back as a telemetry source (what ``ChannelStore.attach`` takes).

    ``telemetry()`` returns the samples due by now at ``speed`` × real time, with the times
    they were recorded at (host time: the axis shows when it happened). No thread: the
    dashboard's frame timer pulls, as it does from a live session. ``seek`` jumps,
    ``finished`` says the end was reached.
    """

    def __init__(self, rec: Recording, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rec = rec
        self._clock = clock
        self.speed = float(speed)
        self.duration = rec.end - rec.start
        self._cursors = dict.fromkeys(rec.channels, 0)
        self._pos0 = 0.0
        self._wall0 = clock()
        self.pushed = 0

    @property
    def position(self) -> float:
        """Seconds into the recording."""
        return min(self.duration, self._pos0 + (self._clock() - self._wall0) * self.speed)

    @property
    def finished(self) -> bool:
        return all(self._cursors[n] >= len(t) for n, (t, _) in self.rec.channels.items())

    def set_speed(self, speed: float) -> None:
        self._pos0, self._wall0 = self.position, self._clock()
        self.speed = float(speed)

    def seek(self, seconds: float) -> None:
        """Continue from ``seconds`` into the recording (the caller clears the plots)."""
        self._pos0, self._wall0 = max(0.0, min(self.duration, seconds)), self._clock()
        upto = self.rec.start + self._pos0
        for name, (t, _) in self.rec.channels.items():
            self._cursors[name] = int(np.searchsorted(t, upto, side="left"))

    def telemetry(self) -> TelemetryBatch:
        upto = self.rec.start + self.position
        chans = {}
        for name, (t, v) in self.rec.channels.items():
            i = self._cursors[name]
            j = int(np.searchsorted(t, upto, side="right"))
            if j > i:
                chans[name] = (t[i:j], v[i:j])
                self._cursors[name] = j
        n = sum(len(c[0]) for c in chans.values())
        self.pushed += n
        return TelemetryBatch(channels=chans, parsed=n, format="replay")
