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
import queue
import threading
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

    def write(self, batch: Any, flush: bool = True) -> None:
        """Append every sample of a TelemetryBatch (and flush to the OS, unless told not)."""
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
        if flush:
            self.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()
            self.bytes = self._file.tell()

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.flush()
                self.bytes = file.tell()
            finally:
                file.close()

    def __enter__(self) -> TelemetryRecorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_STOP = object()


class RecordingWriter:
    """A :class:`TelemetryRecorder` on its own thread: :meth:`write` only queues the batch
    (the caller, e.g. the GUI's frame timer, never formats or touches the disk).

    The queue is bounded (``max_batches``): when the disk falls that far behind, ``write``
    waits for room rather than dropping samples. :meth:`close` writes everything queued,
    flushes, closes the file and joins the thread: nothing is lost on stop. A write error
    stops the writer; it is raised by the next :meth:`write` (or by :meth:`close`).
    """

    def __init__(self, path: str | Path, max_batches: int = 256) -> None:
        self._recorder = TelemetryRecorder(path)  # opens the file: errors raise here
        self.path = self._recorder.path
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, max_batches))
        self.error: Exception | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run, name=f"recorder:{self.path.name}",
                                        daemon=True)
        self._thread.start()

    @property
    def rows(self) -> int:
        return self._recorder.rows

    @property
    def bytes(self) -> int:
        return self._recorder.bytes

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def write(self, batch: Any) -> None:
        """Queue a batch for the writer thread (waits only if ``max_batches`` are queued)."""
        if self.error is not None:
            raise self.error
        if self._closed:
            raise ValueError("recorder is closed")
        self._queue.put(batch)

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is _STOP:
                break
            if self.error is not None:
                continue  # failed: drain the queue so that nobody waits on it
            try:
                self._recorder.write(batch, flush=False)
                if self._queue.empty():
                    self._recorder.flush()
            except (OSError, ValueError) as exc:
                self.error = exc
        try:
            self._recorder.close()
        except (OSError, ValueError) as exc:
            self.error = self.error or exc

    def close(self) -> None:
        """Write what is queued, flush, close the file, join the thread."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def __enter__(self) -> RecordingWriter:
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
