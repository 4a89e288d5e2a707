"""The one clock policy: device clocks mapped to host time (offset, drift, resets)."""

from __future__ import annotations

import numpy as np

from device_drivers.telemetry import HostClock, TelemetryParser


def feed_lines(p: TelemetryParser, t_ms: list[int], host: float) -> None:
    p.feed(b"".join(b'{"t": %d, "a": 1}\n' % t for t in t_ms), t=host)


def test_device_time_maps_to_the_host_time_it_arrived_at() -> None:
    p, clock = TelemetryParser(), HostClock()
    host0 = 1_800_000_000.0
    # the device's clock reads 5 s; a chunk of 10 samples arrives 30 ms after the newest
    feed_lines(p, list(range(5000, 5100, 10)), host0 + 0.03)
    feed_lines(p, list(range(5100, 5200, 10)), host0 + 0.105)  # less delay: better estimate
    batch = clock.map(p.drain())
    t = batch.series("a")[0]
    assert t.dtype == np.float64
    assert abs(clock.offset - (host0 + 0.105 - 5.19)) < 1e-9
    assert np.all(t <= host0 + 0.105 + 1e-9)  # never later than it arrived
    assert np.allclose(np.diff(t), 0.01, atol=1e-6)  # float64: µs at epoch scale
    assert abs(t[-1] - (host0 + 0.105)) < 1e-6


def test_a_reset_restarts_the_estimate_and_is_reported_as_a_break() -> None:
    p, clock = TelemetryParser(), HostClock()
    host0 = 1_800_000_000.0
    feed_lines(p, [10_000, 10_100, 10_200], host0)
    clock.map(p.drain())
    # the board reboots: 3 s later its clock restarts at 0.5 s
    feed_lines(p, [500, 600, 700], host0 + 3.0)
    batch = clock.map(p.drain())
    t = batch.series("a")[0]
    assert abs(t[-1] - (host0 + 3.0)) < 1e-6  # wall time, not "right after" the old segment
    assert len(batch.breaks) == 1 and abs(batch.breaks[0] - (host0 + 2.8)) < 1e-6
    assert clock.resets == 1


def test_a_slow_device_clock_does_not_drift_from_wall_time() -> None:
    p, clock = TelemetryParser(), HostClock(window_s=5.0)
    host0 = 1_800_000_000.0
    last = None
    for k in range(600):  # 60 s, the device clock loses 1 % (600 ms a minute)
        host = host0 + k * 0.1
        feed_lines(p, [int(k * 99)], host)
        last = clock.map(p.drain()).series("a")[0][-1]
    assert abs(last - (host0 + 59.9)) < 0.1  # within one window's drift, not 0.6 s behind


def test_host_stamped_data_passes_unchanged() -> None:
    p, clock = TelemetryParser(fmt="arduino"), HostClock()
    p.feed(b"\n1,2\n3,4\n5,6\n", t=1234.5)
    batch = clock.map(p.drain())
    assert batch.series("ch0")[0].tolist() == [1234.5, 1234.5, 1234.5]
    assert batch.breaks == []


def test_the_recorder_writes_host_time_and_wall_clock_and_reads_old_files(tmp_path) -> None:
    import csv
    from datetime import datetime

    from device_drivers.recording import TelemetryRecorder, read_recording

    p = TelemetryParser()
    host0 = 1_800_000_000.25
    feed_lines(p, [5000, 5010, 5020], host0)  # straight from a parser (the CLI's path)
    out = tmp_path / "rec.csv"
    with TelemetryRecorder(out) as rec:
        rec.write(p.drain())
    rows = list(csv.reader(out.open()))
    assert rows[0] == ["t", "channel", "value", "wall_time"]
    assert float(rows[-1][0]) == host0  # device seconds mapped to host time
    assert datetime.fromisoformat(rows[-1][3]).timestamp() == host0
    t, _ = read_recording(out)["a"]
    assert t.dtype == np.float64 and t[-1] == host0
    old = tmp_path / "old.csv"
    old.write_text("t,channel,value\n1.5,a,2.0\n")
    assert read_recording(old)["a"][0].tolist() == [1.5]
