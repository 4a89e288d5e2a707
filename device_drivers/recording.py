"""Record telemetry to CSV and read it back (long format: one row per sample).

Columns: ``t`` (host time: seconds since the Unix epoch, float64; a device's own clock is
mapped to it by ``telemetry.HostClock``), ``channel``, ``value``, ``wall_time`` (the same
instant as local ISO 8601 with milliseconds, for spreadsheets). The long format survives
channels that appear or vanish mid-recording, and a recording replays through the same code
as a live port. Files without ``wall_time`` (older recordings) are read too.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from device_drivers.telemetry import HostClock

HEADER = ("t", "channel", "value", "wall_time")
OLD_HEADER = HEADER[:3]


def wall_time(t: float) -> str:
    """Host epoch seconds as local ISO 8601 with milliseconds ("" if not an epoch time)."""
    if not 1e8 < t < 1e11:
        return ""
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


class TelemetryRecorder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file: io.TextIOWrapper | None = self.path.open("w", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        self._writer.writerow(HEADER)
        self.rows = 0
        self.bytes = 0
        self.clock = HostClock()  # batches straight from a parser: device time -> host time

    def write(self, batch: Any) -> None:
        """Append every sample of a TelemetryBatch."""
        if self._file is None:
            raise ValueError("recorder is closed")
        batch = self.clock.map(batch)
        samples: list[tuple[float, str, float]] = []
        for name, (ts, values) in batch.channels.items():
            samples.extend((float(t), name, float(v)) for t, v in zip(ts, values, strict=True))
        samples.sort(key=lambda r: r[0])  # numerically: "10.0" sorts before "9.9" as text
        stamps: dict[float, str] = {}
        rows = []
        for t, name, v in samples:
            stamp = stamps.get(t)
            if stamp is None:
                stamp = stamps[t] = wall_time(t)
            rows.append((f"{t:.6f}", name, repr(v), stamp))
        self._writer.writerows(rows)
        self.rows += len(rows)
        self._file.flush()
        self.bytes = self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TelemetryRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_recording(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """channel → (t, values) from a recording; malformed rows are skipped."""
    times: dict[str, list[float]] = defaultdict(list)
    values: dict[str, list[float]] = defaultdict(list)
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        first = next(reader, None)
        if first is None or tuple(first) not in (HEADER, OLD_HEADER):
            raise ValueError(f"{path} is not a TinyOps telemetry recording (header {first})")
        for row in reader:
            if len(row) not in (3, 4):
                continue
            try:
                t, v = float(row[0]), float(row[2])
            except ValueError:
                continue
            times[row[1]].append(t)
            values[row[1]].append(v)
    return {k: (np.asarray(times[k]), np.asarray(values[k])) for k in times}
