"""The desktop app as a user starts it: start time, TensorFlow kept out, memory idle and live.

Every run is a fresh ``python -m app.cli gui … --quit-after S --json`` process (offscreen Qt,
a throw-away ``TINYOPS_HOME``). ``gui_start_s`` is the app's own measure: process start (from
``/proc``) to the main window shown, reported on exit; ``tf_imported_at_start`` is whether
TensorFlow was in ``sys.modules`` at that moment. Resident memory is sampled from ``/proc``
every 100 ms from outside:

- ``rss_mb_idle``: no board, no demo (``--no-auto-demo``), at the end of a short run.
- ``rss_mb_live``: connected (``--port``) to a virtual board served by this process, which
  streams inference telemetry at the app's default period, after ``live_s`` seconds of live
  plotting (60 s; 10 s with ``--quick``). The growth over the second half is reported too.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    ROOT,
    BenchmarkError,
    Figure,
    TempHome,
    child_env,
    last_json_line,
    median,
    python,
    rss_mb,
)

Samples = list[tuple[float, float]]  # (seconds since the process was started, RSS MB)


def _run_gui(args: list[str], home: Path, quit_after: float) -> tuple[dict, Samples]:
    cmd = [python(), "-m", "app.cli", "gui", *args, "--quit-after", f"{quit_after:g}", "--json"]
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    samples: Samples = []
    deadline = started + quit_after + 90
    while proc.poll() is None:
        rss = rss_mb(proc.pid)
        if rss is not None:
            samples.append((time.monotonic() - started, rss))
        if time.monotonic() > deadline:
            proc.kill()
            raise BenchmarkError("the GUI did not quit")
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode != 0:
        tail = (err or out).strip().splitlines()[-3:]
        raise BenchmarkError(f"tinyops gui exited {proc.returncode}: {' | '.join(tail)}")
    return last_json_line(out), samples


def _start_runs(repeats: int) -> tuple[list[float], list[bool], list[float]]:
    starts, tf, idle = [], [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="bench-gui-") as home:
            report, samples = _run_gui(["--no-auto-demo"], Path(home), 4.0)
        if report.get("start_s") is None:
            raise BenchmarkError("the GUI did not report its start time")
        starts.append(float(report["start_s"]))
        tf.append(bool(report.get("tf_imported_at_start")))
        if samples:
            idle.append(samples[-1][1])
    return starts, tf, idle


def _live_run(live_s: float) -> tuple[dict, Samples, int]:
    from device_drivers.virtual.board import VirtualBoard

    with TempHome() as home, \
            VirtualBoard(board="nano33ble", state_dir=home / "board") as board:
        report, samples = _run_gui(["--port", str(board.port)], home, live_s + 5.0)
        return report, samples, board.counters.telemetry_lines


def run(quick: bool) -> list[Figure]:
    repeats = 3 if quick else 5
    live_s = 10.0 if quick else 60.0
    starts, tf, idle = _start_runs(repeats)
    report, samples, lines = _live_run(live_s)
    if not samples:
        raise BenchmarkError("no memory samples of the live GUI")
    if not report.get("samples"):
        raise BenchmarkError("the live GUI plotted nothing (no telemetry samples)")
    end_t = samples[-1][0] - 1.5  # the app starts quitting about here: leave that out
    half = [rss for t, rss in samples if end_t - live_s / 2 <= t <= end_t] or [samples[-1][1]]
    live = max(half)
    growth = half[-1] - half[0]
    start_live = report.get("start_s")
    return [
        Figure("gui_start_s", median(starts), "s", None, "",
               "no target set; process start → main window shown, offscreen",
               f"median of {repeats} fresh processes, no board (--no-auto-demo): "
               + ", ".join(f"{s:.2f}" for s in starts)
               + (f"; with a board (--port) {start_live:.2f} s" if start_live else ""),
               samples=starts),
        Figure("tf_imported_at_start", any(tf), "", False, "==",
               "TensorFlow (~10 s to import) stays out until a model job needs it",
               f"sys.modules checked when the window was shown, {repeats} runs"),
        Figure("rss_mb_idle", median(idle), "MB", None, "",
               "no target set; resident memory, no board",
               f"median of {repeats} runs, sampled at the end of a 4 s run", samples=idle),
        Figure("rss_mb_live", live, "MB", None, "",
               f"no target set; {live - median(idle):+.0f} MB over idle, "
               f"{growth:+.1f} MB over the last {live_s / 2:.0f} s",
               f"connected to a virtual board streaming inference telemetry "
               f"({lines} lines sent, {report.get('samples')} samples plotted); the peak over "
               f"the second half of {live_s:.0f} s of live plotting; the app's own p95 frame "
               f"{report.get('frame_ms_p95')} ms",
               extra={"rss_series": [(round(t, 1), round(r, 1)) for t, r in samples[::10]],
                      "growth_last_half_mb": round(growth, 2)}),
    ]
