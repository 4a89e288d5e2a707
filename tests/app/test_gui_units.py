"""Units of the GUI's data path and workers: ring buffers, decimation, hand-off, job runner."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.gui.workers import JobRunner, describe_error
from app.state.live_buffers import RingBuffer, decimate_peak
from app.state.live_channels import channel_spec
from app.state.live_store import ChannelStore
from device_drivers.errors import Cancelled, PortError
from device_drivers.telemetry import TelemetryBatch

chunks = st.lists(st.integers(min_value=0, max_value=300), min_size=1, max_size=40)


@given(sizes=chunks, capacity=st.integers(min_value=16, max_value=200))
@settings(max_examples=200, deadline=None)
def test_ring_keeps_the_newest_samples_in_order(sizes: list[int], capacity: int) -> None:
    ring = RingBuffer(capacity)
    everything = np.empty(0)
    k = 0
    for n in sizes:
        t = np.arange(k, k + n, dtype=np.float64)
        k += n
        ring.extend(t, t * 2)
        everything = np.concatenate([everything, t])
        got_t, got_v = ring.view()
        want = everything[-capacity:]
        np.testing.assert_array_equal(got_t, want)
        np.testing.assert_array_equal(got_v, (want * 2).astype(np.float32))
    assert ring.total == k


@given(sizes=chunks, grow_at=st.integers(min_value=0, max_value=39))
@settings(max_examples=100, deadline=None)
def test_growing_a_ring_keeps_its_samples(sizes: list[int], grow_at: int) -> None:
    ring = RingBuffer(16, max_capacity=1 << 12)
    ref: list[float] = []
    k = 0
    for i, n in enumerate(sizes):
        if i == grow_at:
            ring.reserve(ring.capacity * 4)
        t = np.arange(k, k + n, dtype=np.float64)
        k += n
        ring.extend(t, t)
        ref = (ref + t.tolist())[-ring.capacity:]  # what a ring of this capacity can hold
        np.testing.assert_array_equal(ring.view()[0], np.array(ref))


def test_ring_lookup_helpers() -> None:
    ring = RingBuffer(64)
    t = np.arange(10, dtype=np.float64)
    ring.extend(t, t * 10)
    st_, sv = ring.since(4.5)
    assert st_[0] == 4.0 and sv[-1] == 90  # one sample before the edge, then the rest
    assert ring.value_at(6.4) == 60 and ring.value_at(6.6) == 70
    assert ring.value_at(-5) == 0 and ring.value_at(99) == 90
    assert ring.last() == (9.0, 90.0)


@given(v=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=3000),
       max_points=st.integers(min_value=4, max_value=500))
@settings(max_examples=200, deadline=None)
def test_peak_decimation_keeps_every_extreme(v: list[float], max_points: int) -> None:
    t = np.arange(len(v), dtype=np.float64)
    arr = np.asarray(v)
    dt, dv = decimate_peak(t, arr, max_points)
    assert len(dv) <= max(max_points + 2, len(v) if len(v) <= max_points else 0)
    assert dv.max() == arr.max() and dv.min() == arr.min()
    assert np.all(np.diff(dt) > 0)  # still in time order, no duplicates
    np.testing.assert_array_equal(arr[dt.astype(int)], dv)  # only real samples, at their t


def test_store_hands_batches_over_and_bounds_a_stalled_gui() -> None:
    store = ChannelStore(max_pending=1000)
    for i in range(50):
        t = np.arange(i * 100, (i + 1) * 100, dtype=np.float64)
        store.push(TelemetryBatch(channels={"x": (t, t)}, lines=[f"l{i}"], parsed=100), 1.0)
    assert store.pending_samples <= 1000
    assert store.overflow_dropped == 50 * 100 - store.pending_samples
    drained = store.drain()
    t, _ = drained.merged("x")
    assert t[-1] == 4999 and np.all(np.diff(t) == 1)  # the newest survive, in order
    assert len(drained.lines) == 50 and drained.parsed == 5000
    assert store.drain().channels == {}


def test_store_is_safe_under_a_concurrent_reader_thread() -> None:
    store = ChannelStore()
    stop = threading.Event()

    def produce() -> None:
        k = 0
        while not stop.is_set():
            t = np.arange(k, k + 10, dtype=np.float64)
            store.push(TelemetryBatch(channels={"a": (t, t), "b": (t, -t)}))
            k += 10

    thread = threading.Thread(target=produce)
    thread.start()
    got_a: list[np.ndarray] = []
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        d = store.drain()
        if "a" in d.channels:
            got_a.append(d.merged("a")[0])
    stop.set()
    thread.join()
    d = store.drain()
    if "a" in d.channels:
        got_a.append(d.merged("a")[0])
    allt = np.concatenate(got_a)
    np.testing.assert_array_equal(allt, np.arange(len(allt)))  # nothing lost or reordered


@pytest.mark.parametrize(("name", "panel", "scale"), [
    ("score/bearing_fault", "scores", 1.0), ("latency_us", "latency", 1e-3),
    ("arena_used", "memory", 1 / 1024), ("cpu_load", "cpu", 100.0), ("vcc_mv", "supply", 1e-3),
    ("dsp_ms", "latency", 1.0), ("accX", "signals", 1.0),
])
def test_channels_map_to_panels_and_units(name: str, panel: str, scale: float) -> None:
    spec = channel_spec(name)
    assert (spec.panel, spec.scale) == (panel, scale)


def test_describe_error_gives_the_cause_and_the_fix() -> None:
    e = describe_error(PortError("port /dev/x is busy", "close the other program"))
    assert (e.message, e.hint, e.expected) == ("port /dev/x is busy", "close the other program",
                                               True)
    assert describe_error(Cancelled()).cancelled
    try:
        _ = 1 / 0
    except ZeroDivisionError as exc:
        bug = describe_error(exc)
    assert not bug.expected and "ZeroDivisionError" in bug.message and "Traceback" in bug.detail
    assert describe_error(FileNotFoundError(2, "No such file", "/m.tflite")).message.endswith(
        "/m.tflite")


def test_runner_reports_progress_result_and_cancel(qtbot) -> None:
    runner = JobRunner()

    def work(n: int, progress=None, cancel=None) -> int:
        for i in range(n):
            if cancel.is_set():
                raise Cancelled(f"stopped at {i}")
            progress((i + 1) / n, f"step {i}")
            time.sleep(0.002)
        return n * 2

    seen: list[float] = []
    job = runner.submit(work, 50)
    job.progress.connect(lambda f, m: seen.append(f))
    with qtbot.waitSignal(job.succeeded, timeout=5000) as blocker:
        pass
    assert blocker.args == [100]
    qtbot.waitUntil(lambda: not runner.active, timeout=2000)
    assert seen and seen == sorted(seen) and seen[-1] == 1.0
    assert len(seen) < 50  # throttled: not one queued signal per step

    slow = runner.submit(work, 10_000)
    with qtbot.waitSignal(slow.failed, timeout=5000) as blocker:
        qtbot.wait(30)
        slow.cancel()
    assert blocker.args[0].cancelled
    assert runner.shutdown(2000)
    runner.deleteLater()
