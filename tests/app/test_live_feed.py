"""The live feed without Qt: host-time batches from any source → rings, counters, recording."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.state.live_feed import LiveFeed
from app.state.live_recording import Recording, ReplaySource
from device_drivers.telemetry import TelemetryBatch, TelemetryParser

T0 = 1_700_000_000.0  # host epoch seconds


def _batch(name: str, t: list[float], v: list[float], **kw) -> TelemetryBatch:  # type: ignore[no-untyped-def]
    return TelemetryBatch(channels={name: (np.array(t), np.array(v, dtype=float))}, **kw)


def test_the_feed_runs_without_qt() -> None:
    code = ("import sys, app.state.live_feed as f; f.LiveFeed(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"


def test_pushed_batches_land_in_rings_in_display_units_and_are_counted() -> None:
    feed = LiveFeed(window_s=10.0)
    feed.store.push(_batch("latency_us", [T0, T0 + 0.1], [1500.0, 2500.0], parsed=2, dropped=1))
    update = feed.ingest(feed.drain(), now=100.0)
    assert [c.name for c in update.added] == ["latency_us"] and update.changed == ["latency_us"]
    assert update.new_samples == 2 and feed.samples_total == 2
    assert feed.parsed_total == 2 and feed.dropped_total == 1
    t, v = feed.channel_data("latency_us")
    assert t.tolist() == pytest.approx([0.0, 0.1])  # seconds since the first sample
    assert v.tolist() == pytest.approx([1.5, 2.5])  # µs shown in ms
    assert feed.t0 == T0 and feed.latest == pytest.approx(0.1)
    # the next frame: the channel is known, not added again
    feed.store.push(_batch("latency_us", [T0 + 0.2], [1000.0]))
    update = feed.ingest(feed.drain(), now=100.5)
    assert update.added == [] and update.new_samples == 1
    assert feed.sample_rate() == pytest.approx(1 / 0.5)


def test_a_break_becomes_a_nan_point_between_the_samples() -> None:
    feed = LiveFeed()
    feed.store.push(_batch("temp_c", [T0, T0 + 1], [30.0, 31.0]))
    feed.ingest(feed.drain())
    feed.add_break(T0 + 1.5)  # e.g. the board went away and came back
    feed.store.push(_batch("temp_c", [T0 + 2], [32.0]))
    feed.ingest(feed.drain())
    t, v = feed.channel_data("temp_c")
    assert t.tolist() == pytest.approx([0.0, 1.0, 1.5, 2.0])
    assert np.isnan(v[2]) and v[3] == pytest.approx(32.0)


def test_time_never_runs_backwards_in_a_ring() -> None:
    feed = LiveFeed()
    feed.store.push(_batch("ch0", [T0 + 5], [1.0]))
    feed.ingest(feed.drain())
    feed.store.push(_batch("ch0", [T0 + 4, T0 + 6], [2.0, 3.0]))  # a remapped clock stepped back
    feed.ingest(feed.drain())
    t, _ = feed.channel_data("ch0")
    assert np.all(np.diff(t) >= 0)


def test_channels_are_bounded() -> None:
    feed = LiveFeed(max_channels=3)
    feed.store.push(TelemetryBatch(channels={
        f"ch{i}": (np.array([T0]), np.array([1.0])) for i in range(10)}))
    update = feed.ingest(feed.drain())
    assert len(feed.channels) == 3 and len(update.added) == 3 and update.new_samples == 3


def test_serial_and_replay_sources_give_the_same_batches() -> None:
    """A parser (what a serial session holds) and a replayed recording feed the same rings."""
    parser = TelemetryParser()
    parser.feed(b"".join(f"ch0:{i}.0,ch1:{2 * i}.0\n".encode() for i in range(5)), T0)

    class Serial:  # what a DeviceSession offers the store
        def telemetry(self) -> TelemetryBatch:
            return parser.drain()

    live = LiveFeed()
    live.store.attach(Serial())
    live.ingest(live.drain())
    got = {n: live.channel_data(n)[1].tolist() for n in live.channels}
    assert set(got) == {"ch0", "ch1"} and len(got["ch0"]) >= 4

    rec = Recording({n: (np.array([T0 + i * 0.01 for i in range(len(v))]), np.array(v))
                     for n, v in got.items()})
    clock = [0.0]
    replay = ReplaySource(rec, clock=lambda: clock[0])
    feed = LiveFeed()
    feed.store.attach(replay)
    clock[0] = 10.0  # past the end
    feed.ingest(feed.drain())
    assert {n: feed.channel_data(n)[1].tolist() for n in feed.channels} == got


def test_recording_writes_every_sample_off_the_callers_thread(tmp_path) -> None:
    feed = LiveFeed()
    path = tmp_path / "rec.csv"
    recorder = feed.start_recording(path)
    for k in range(50):
        feed.store.push(_batch("ch0", [T0 + k * 0.01 + j * 0.001 for j in range(10)],
                               [float(k * 10 + j) for j in range(10)]))
        feed.ingest(feed.drain())
    assert recorder._thread.is_alive() and recorder._thread.name.startswith("recorder:")
    assert feed.stop_recording() == 500  # everything queued was written before close
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    assert [float(r[2]) for r in rows] == [float(i) for i in range(500)]
    assert feed.recorder is None and not recorder._thread.is_alive()


def test_a_failing_recording_stops_and_says_so(tmp_path) -> None:
    feed = LiveFeed()
    feed.start_recording(tmp_path / "rec.csv")
    feed.recorder.error = OSError(28, "No space left on device")  # what the writer sets
    feed.store.push(_batch("ch0", [T0], [1.0]))
    update = feed.ingest(feed.drain())
    assert update.recording_error and "No space left" in update.recording_error
    assert feed.recorder is None and update.new_samples == 1  # the plot goes on
