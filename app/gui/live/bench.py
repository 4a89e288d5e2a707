"""Measure the live plot under load: a synthetic board through the real reader path.

A feeder thread writes JSON telemetry lines (the runtime's format) at ``rate_hz`` into a
``TelemetryParser`` exactly as a ``DeviceSession``'s I/O thread does; the dashboard's store
is attached to it as to a session and takes what was parsed at each frame. The GUI thread runs the
dashboard's timer; each frame's time is ``tick()`` (drain, rings, ``setData``) plus a
synchronous repaint of the plots (the render).

    python -m app.gui.live.bench --seconds 20 --json      (prints one JSON object)

Used by the soak test (in a subprocess) and by the benchmarks (``plot_p95_ms``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import threading
import time
from typing import Any


def rss_mb() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return float("nan")


def _lines(t0_ms: float, n: int, rate_hz: float, k0: int) -> bytes:
    out = []
    for i in range(n):
        k = k0 + i
        t = t0_ms + i * 1000.0 / rate_hz
        phase = (k // int(rate_hz * 3)) % 3  # the "machine state" changes every 3 s
        s = [0.05, 0.05, 0.05]
        s[phase] = 0.9
        out.append(json.dumps({
            "t": round(t, 3),
            "scores": {"normal": s[0], "imbalance": s[1], "bearing_fault": s[2]},
            "latency_us": 1800 + 200 * math.sin(k / 50.0),
            "arena_used": 4928, "heap_free": 24000 + (k % 100),
            "temp_c": 31.0 + 0.5 * math.sin(k / 500.0),
            "vcc_mv": 3300 + (k % 7),
        }, separators=(",", ":")))
    return ("\n".join(out) + "\n").encode()


class SyntheticBoard(threading.Thread):
    """Feeds ``store`` at ``rate_hz`` lines/s (8 channels each) via a TelemetryParser."""

    def __init__(self, store: Any, rate_hz: float = 1000.0, chunk_ms: float = 10.0) -> None:
        super().__init__(name="synthetic-board", daemon=True)
        from device_drivers.telemetry import TelemetryParser

        self.store = store
        self.rate_hz = rate_hz
        self.chunk_ms = chunk_ms
        self.parser = TelemetryParser()
        self.stop_event = threading.Event()
        self.lines = 0
        self.bytes = 0
        self._lock = threading.Lock()

    def telemetry(self):  # type: ignore[no-untyped-def]
        """What a ``DeviceSession`` offers: everything parsed since the last call."""
        with self._lock:
            return self.parser.drain()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop_event.is_set():
            due = int((time.monotonic() - start) * self.rate_hz)
            if due > self.lines:
                data = _lines(self.lines * 1000.0 / self.rate_hz, due - self.lines,
                              self.rate_hz, self.lines)
                with self._lock:  # the session's I/O thread parses under the same lock
                    self.parser.feed(data, time.time())
                self.bytes += len(data)
                self.lines = due
            self.stop_event.wait(self.chunk_ms / 1000.0)


def measure_plot(seconds: float = 10.0, rate_hz: float = 1000.0, window_points: int = 5000,
                 fps: float = 40.0, size: tuple[int, int] = (1280, 800),
                 rss_every_s: float = 1.0) -> dict[str, Any]:
    """Run the dashboard for ``seconds`` under a synthetic load; return frame and RSS stats."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import theme
    from app.gui.live.dashboard import LiveDashboard

    app = QApplication.instance() or QApplication(sys.argv[:1])
    theme.apply(app)
    dash = LiveDashboard(fps=fps, window_s=window_points / rate_hz)
    dash.timer.stop()  # driven below, so that each frame's render is measured too
    dash.resize(*size)
    dash.show()
    feeder = SyntheticBoard(dash.store, rate_hz)
    dash.store.attach(feeder)
    frames: list[float] = []
    rss: list[tuple[float, float]] = []
    cpu: list[tuple[float, float]] = []  # (s, % of one core over the last interval)
    started = time.monotonic()
    last_rss = [0.0]
    last_cpu = [time.process_time()]

    def frame() -> None:
        t = time.perf_counter()
        before = dash.samples_total
        dash.tick()
        if dash.samples_total != before:
            dash.view.viewport().repaint()  # render now, synchronously, to time it
            frames.append((time.perf_counter() - t) * 1000.0)
        now = time.monotonic()
        if now - last_rss[0] >= rss_every_s:
            span = now - last_rss[0] if last_rss[0] else 0.0
            last_rss[0] = now
            rss.append((round(now - started, 2), round(rss_mb(), 1)))
            used = time.process_time()
            if span > 0:  # the whole process: GUI thread, parser thread, numpy
                cpu.append((round(now - started, 2), round(100 * (used - last_cpu[0]) / span, 1)))
            last_cpu[0] = used
        if now - started >= seconds:
            app.quit()

    timer = QTimer()
    timer.timeout.connect(frame)
    timer.start(max(1, round(1000 / fps)))
    feeder.start()
    app.exec()
    timer.stop()
    feeder.stop_event.set()
    feeder.join(2.0)
    points = {n: dash.curve_points(n) for n in dash.channels()}
    window = {n: len(dash.channel_data(n)[0]) for n in dash.channels()}
    dash.shutdown()
    dash.deleteLater()
    ordered = sorted(frames)

    def pct(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2) if ordered else None

    return {
        "seconds": round(time.monotonic() - started, 2), "rate_hz": rate_hz,
        "channels": len(points), "lines_fed": feeder.lines, "bytes_fed": feeder.bytes,
        "samples_plotted": dash.samples_total, "dropped": dash.dropped_total
        + dash.store.overflow_dropped, "frames": len(frames),
        "frame_ms_p50": pct(0.5), "frame_ms_p95": pct(0.95), "frame_ms_max": pct(1.0),
        "points_in_rings_max": max(window.values(), default=0),
        "points_drawn_max": max(points.values(), default=0),
        "rss_mb": rss, "cpu_pct": cpu, "pid": os.getpid(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rate", type=float, default=1000.0, help="lines per second (8 channels)")
    p.add_argument("--window-points", type=int, default=5000)
    p.add_argument("--every", type=float, default=1.0, help="RSS/CPU sampling period, s")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    result = measure_plot(args.seconds, args.rate, args.window_points,
                          rss_every_s=args.every)
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:22s} {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
