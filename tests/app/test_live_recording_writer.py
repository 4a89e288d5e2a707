"""The CSV recorder's writer thread: bounded, nothing lost on close, errors surface."""

from __future__ import annotations

import csv
import threading

import numpy as np
import pytest

from device_drivers.recording import RecordingWriter, read_recording
from device_drivers.telemetry import TelemetryBatch

T0 = 1_700_000_000.0


def _batch(k: int, n: int = 100) -> TelemetryBatch:
    t = T0 + (k * n + np.arange(n)) * 1e-3
    return TelemetryBatch(channels={"a": (t, np.arange(n, dtype=float) + k * n),
                                    "b": (t, -np.arange(n, dtype=float))})


def test_close_writes_everything_queued(tmp_path) -> None:
    path = tmp_path / "r.csv"
    writer = RecordingWriter(path, max_batches=4)
    for k in range(40):  # more than the queue holds: write() waits for room, drops nothing
        writer.write(_batch(k))
    writer.close()
    assert writer.rows == 40 * 100 * 2
    got = read_recording(path)
    assert got["a"][1].tolist() == [float(i) for i in range(4000)]
    assert len(got["b"][0]) == 4000
    with pytest.raises(ValueError, match="closed"):
        writer.write(_batch(0))


def test_the_disk_work_happens_on_the_writer_thread(tmp_path, monkeypatch) -> None:
    from device_drivers import recording

    seen: list[str] = []
    real = recording.TelemetryRecorder.write

    def spy(self, batch, flush=True):  # type: ignore[no-untyped-def]
        seen.append(threading.current_thread().name)
        return real(self, batch, flush)

    monkeypatch.setattr(recording.TelemetryRecorder, "write", spy)
    with RecordingWriter(tmp_path / "r.csv") as writer:
        writer.write(_batch(0))
    assert seen == ["recorder:r.csv"] and writer.rows == 200


def test_a_write_error_is_raised_to_the_caller(tmp_path) -> None:
    writer = RecordingWriter(tmp_path / "r.csv")
    writer._recorder._file.close()  # the file goes away under the writer (disk error)
    writer.write(_batch(0))
    with pytest.raises(ValueError):
        writer.close()  # the writer thread's error, not a silent loss
    assert writer.error is not None


def test_an_unwritable_path_fails_at_once(tmp_path) -> None:
    with pytest.raises(OSError):
        RecordingWriter(tmp_path / "missing" / "r.csv")
    with (tmp_path / "ok.csv").open("w") as fh:
        csv.writer(fh).writerow(["x"])
