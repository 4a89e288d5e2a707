"""Child process of the plot benchmark (needs Qt; run with QT_QPA_PLATFORM=offscreen).

The GUI's own ``LiveDashboard`` (5 s window) is fed by the real reader path: a writer
thread prints lines with 8 channels at 1 kHz into a pty (``--format arduino``: 8 labelled
plotter values, one panel of 8 curves; ``--format json``: the runtime's telemetry, 3 class
scores + latency, arena, heap, temperature, supply over 5 panels); a
``DeviceSession`` reads the other end (smpclient's serial transport, ``TelemetryParser``
on its I/O thread); the dashboard's ``ChannelStore`` is attached to the session, as the
GUI's ``DeviceLink`` does, so each frame takes what was parsed since the previous one.
Frames are driven here at the dashboard's 40 Hz: one frame = ``tick()`` (drain, ring
buffers, ``setData`` of every curve) plus the event processing that follows it, as in the
app (the scene's change notice, then the paint of the plot view; one paint per frame).
After each measured frame, one frame of the floor (``benchmarks/plot_floor.py``): the same
drawn points in a bare pyqtgraph window, timed the same way, under the same load.
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
import tty

CHANNELS = 8
SETTLE = 3  # event-loop passes a frame is given: everything it triggers is in its time
RATE_HZ = 1000


def _plotter_line(i: int, channels: int = CHANNELS) -> str:
    """Labelled values: one "Signals" panel with one curve per channel."""
    t = i / RATE_HZ
    return ",".join(f"ch{c}:{math.sin(2 * math.pi * (0.5 + c) * t) * (c + 1) + (i % 7) * 0.01:.3f}"
                    for c in range(channels))


def _plotter16_line(i: int) -> str:
    return _plotter_line(i, 16)


def _json_line(i: int) -> str:
    """The runtime's telemetry: 3 class scores + 5 health channels over 5 panels."""
    s = [0.05, 0.05, 0.05]
    s[(i // (RATE_HZ * 3)) % 3] = 0.9  # the "machine state" changes every 3 s
    return json.dumps({
        "t": i, "scores": {"normal": s[0], "imbalance": s[1], "bearing_fault": s[2]},
        "latency_us": round(1800 + 200 * math.sin(i / 50.0)), "arena_used": 4928,
        "heap_free": 24000 + i % 100, "temp_c": round(31.0 + 0.5 * math.sin(i / 500.0), 3),
        "vcc_mv": 3300 + i % 7}, separators=(",", ":"))


LINES = {"arduino": _plotter_line, "arduino16": _plotter16_line, "json": _json_line}


def _writer(fd: int, stop: threading.Event, make_line) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    sent = 0
    while not stop.is_set():
        due = int((time.monotonic() - started) * RATE_HZ)
        if due > sent:
            text = "".join(make_line(i) + "\n" for i in range(sent, due))
            try:
                os.write(fd, text.encode())
            except OSError:
                return
            sent = due
        stop.wait(0.005)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time")
    parser.add_argument("--window", type=float, default=5.0)
    parser.add_argument("--fps", type=float, default=40.0)
    parser.add_argument("--format", choices=sorted(LINES), default="arduino")
    parser.add_argument("--no-floor", action="store_true",
                        help="skip the bare-pyqtgraph floor (benchmarks/plot_floor.py)")
    args = parser.parse_args()

    from PySide6.QtCore import QEvent, QObject
    from PySide6.QtWidgets import QApplication

    from app.gui.live.dashboard import LiveDashboard
    from benchmarks import plot_floor
    from device_drivers.link import DeviceSession

    app = QApplication.instance() or QApplication(sys.argv[:1])
    dash = LiveDashboard(window_s=args.window, fps=args.fps, dark=False)
    dash.timer.stop()  # frames are driven (and timed) below
    dash.resize(1280, 800)
    dash.show()
    app.processEvents()

    class PaintCounter(QObject):
        count = 0

        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                PaintCounter.count += 1
            return False

    counter = PaintCounter()
    dash.view.viewport().installEventFilter(counter)

    master, slave = os.openpty()
    tty.setraw(slave)
    session = DeviceSession.open(os.ttyname(slave), read_params=False, timeout_s=2.0)
    stop = threading.Event()
    dash.store.attach(session)  # the GUI's path: frames take what the I/O thread parsed
    threads = [threading.Thread(target=_writer, args=(master, stop, LINES[args.format]),
                                daemon=True)]
    for thread in threads:
        thread.start()

    period = 1.0 / args.fps
    warm_until = time.monotonic() + args.window + 1.5  # fill the window first
    end = warm_until + args.seconds
    frames: list[float] = []
    floor_frames: list[float] = []
    frames_cpu: list[float] = []  # GUI-thread CPU per frame
    floor_cpu: list[float] = []
    floor = None
    ticks: list[float] = []
    samples_at_start = 0
    paints_at_start = 0
    next_at = time.monotonic()
    while True:
        now = time.monotonic()
        if now >= end:
            break
        c0 = time.thread_time()  # CPU of this (the GUI) thread: what other processes
        t0 = time.perf_counter()  # on a shared machine do not inflate
        dash.tick()
        t1 = time.perf_counter()
        for _ in range(SETTLE):  # as in the app: the scene's change notice, then the paint,
            app.processEvents()  # and whatever the paint itself queues (a second paint?)
        t2 = time.perf_counter()
        c2 = time.thread_time()
        if now >= warm_until:
            if not frames:
                samples_at_start = dash.samples_total
                paints_at_start = PaintCounter.count
                measured_from = now
            frames.append((t2 - t0) * 1000.0)
            ticks.append((t1 - t0) * 1000.0)
            frames_cpu.append((c2 - c0) * 1000.0)
            if floor is None and not args.no_floor:  # the same points, bare pyqtgraph
                floor = plot_floor.Floor(plot_floor.capture(dash),
                                         (dash.view.width(), dash.view.height()), args.fps)
                paints_at_start = PaintCounter.count
            elif floor is not None:
                c3 = time.thread_time()
                floor_frames.append(floor.frame())
                floor_cpu.append((time.thread_time() - c3) * 1000.0)
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    span = time.monotonic() - measured_from
    points = {name: dash.curve_points(name) for name in dash.channels()}
    held = {name: len(dash.channel_data(name)[0]) for name in dash.channels()}
    stop.set()
    for thread in threads:
        thread.join(timeout=2)
    session.close()
    if floor is not None:
        floor.close()
    from benchmarks.common import rss_mb

    frames_sorted = sorted(frames)
    print(json.dumps({
        "frames": len(frames),
        "frame_ms": [round(f, 3) for f in frames],
        "floor_ms": [round(f, 3) for f in floor_frames],
        "frame_cpu_ms": [round(f, 3) for f in frames_cpu],
        "floor_cpu_ms": [round(f, 3) for f in floor_cpu],
        "tick_ms_median": sorted(ticks)[len(ticks) // 2] if ticks else None,
        "frame_ms_median": frames_sorted[len(frames) // 2] if frames else None,
        "paints": PaintCounter.count - paints_at_start,
        "samples_per_s": (dash.samples_total - samples_at_start) / span if span > 0 else 0.0,
        "channels": len(points),
        "panels": len(dash.panels),
        "points_held_min": min(held.values()) if held else 0,
        "points_drawn_max": max(points.values()) if points else 0,
        "dropped": dash.dropped_total + dash.store.overflow_dropped,
        "rss_mb": rss_mb(os.getpid()),
    }))
    dash.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
