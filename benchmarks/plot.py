"""Live plot cost: frame time of the GUI's dashboard, and CPU/memory over a long live run.

``plot_p95_ms``: p95 frame time at 8 channels × 1 kHz, 5 s window (8 × 5 000 points), the
worse of two layouts (the runtime's JSON over 5 panels; 8 plotter curves in one panel).
``plot16_p95_ms``: 16 channels × 10 s at 1 kHz (16 × 10 000 points) in one panel.
Both run ``benchmarks/plot_child.py`` in a child process (``QT_QPA_PLATFORM=offscreen``,
software rendering): a frame is ``LiveDashboard.tick()`` (drain, ring buffers, min/max per
pixel column, ``setData``) plus the event processing that paints it (one paint per frame).
Target: ≤ 16.7 ms (60 Hz). Each is also given as a ratio to its floor, measured in the same
child, frame for frame: a bare pyqtgraph window drawing the same points (``plot_floor.py``),
target ≤ 1.25×.

``live_cpu_drift_pct`` / ``live_rss_growth_mb``: ``app.gui.live.bench`` (a synthetic
1 kHz board, 8 channels, through the same parser → store → plots path) for 60 s with
``--quick``, 120 s otherwise, 600 s with ``TINYOPS_BENCH_LIVE_S=600`` (opt-in: the 10-minute
run). CPU (% of one core, per second) must stay flat: the median of the last third minus
the first third after warm-up; memory must stay bounded: growth after 40 % of the run.
"""

from __future__ import annotations

import os
import statistics

from benchmarks.common import (
    BenchmarkError,
    Figure,
    child_env,
    last_json_line,
    percentile,
    python,
    run_child,
)

LAYOUTS = {  # name: (--format, channels, window s)
    "json": ("json", 8, 5.0),
    "arduino": ("arduino", 8, 5.0),
    "arduino16": ("arduino16", 16, 10.0),
}


FLOOR_HOW = ("floor: benchmarks/plot_floor.py in the same child, one frame after each "
             "dashboard frame (the same load for both): "
             "a bare pyqtgraph GraphicsLayoutWidget of the same size and grid, the same "
             "curves, pens and drawn points, data and x range shifted each frame, "
             "setData + paint, pyqtgraph's defaults (no grid, no titles)")


def _measure(layout: str, seconds: float) -> dict:
    fmt, channels, window = LAYOUTS[layout]
    proc = run_child([python(), "-m", "benchmarks.plot_child", "--seconds", str(seconds),
                      "--format", fmt, "--window", str(window)], env=child_env(),
                     timeout=seconds + window + 120)
    got = last_json_line(proc.stdout)
    frames = got["frame_ms"]
    if len(frames) < 20:
        raise BenchmarkError(f"{layout}: only {len(frames)} frames were drawn")
    if not len(frames) * 0.9 <= got["paints"] <= len(frames) * 1.2:
        raise BenchmarkError(f"{layout}: the view painted {got['paints']} times for "
                             f"{len(frames)} frames (one paint per frame expected)")
    want = int(window * 1000 * 0.9)
    if got["points_held_min"] < want or got["channels"] != channels:
        raise BenchmarkError(f"{layout}: the dashboard held {got['points_held_min']} points "
                             f"on {got['channels']} channels, not {channels} × {want}+")
    got["p95"] = percentile(frames, 0.95)
    if len(got["floor_ms"]) < 20:
        raise BenchmarkError(f"{layout}: the floor drew only {len(got['floor_ms'])} frames")
    got["floor_p95"] = percentile(got["floor_ms"], 0.95)
    got["ratio"] = got["p95"] / got["floor_p95"]
    # GUI-thread CPU per frame: the same frames, without what other processes take
    got["cpu_p95"] = percentile(got["frame_cpu_ms"], 0.95)
    got["floor_cpu_p95"] = percentile(got["floor_cpu_ms"], 0.95)
    got["cpu_ratio"] = got["cpu_p95"] / got["floor_cpu_p95"]
    return got


def _describe(runs: dict[str, dict]) -> str:
    return "; ".join(
        f"{name} ({r['channels']} ch, {r['panels']} panel{'s' if r['panels'] > 1 else ''}): "
        f"p95 {r['p95']:.1f} ms (floor {r['floor_p95']:.1f} ms, {r['ratio']:.2f}×; GUI-thread "
        f"CPU p95 {r['cpu_p95']:.1f} ms, floor {r['floor_cpu_p95']:.1f} ms, "
        f"{r['cpu_ratio']:.2f}×), "
        f"median {r['frame_ms_median']:.1f} ms (tick "
        f"{r['tick_ms_median']:.1f} ms), {r['samples_per_s']:.0f} samples/s, "
        f"{len(r['frame_ms'])} frames, {r['points_drawn_max']} points drawn per curve"
        for name, r in runs.items())


def _extra(runs: dict[str, dict]) -> dict:
    return {name: {"p95": round(r["p95"], 2), "median": round(r["frame_ms_median"], 2),
                   "floor_p95": round(r["floor_p95"], 2), "ratio": round(r["ratio"], 3),
                   "cpu_p95": round(r["cpu_p95"], 2), "floor_cpu_p95": round(r["floor_cpu_p95"], 2),
                   "cpu_ratio": round(r["cpu_ratio"], 3),
                   "tick_median": round(r["tick_ms_median"], 2), "frames": len(r["frame_ms"]),
                   "panels": r["panels"], "samples_per_s": round(r["samples_per_s"]),
                   "dropped": r["dropped"], "rss_mb": r["rss_mb"]}
            for name, r in runs.items()}


def _live_run(seconds: float) -> list[Figure]:
    proc = run_child([python(), "-m", "app.gui.live.bench", "--seconds", f"{seconds:g}",
                      "--rate", "1000", "--window-points", "5000", "--every", "2", "--json"],
                     env=child_env(), timeout=seconds + 120)
    got = last_json_line(proc.stdout)
    cpu = [(t, c) for t, c in got["cpu_pct"] if t >= seconds * 0.2]  # after start-up
    rss = [(t, m) for t, m in got["rss_mb"] if t >= seconds * 0.4]  # rings filled
    if len(cpu) < 6 or len(rss) < 3:
        raise BenchmarkError(f"live run: too few samples ({len(cpu)} CPU, {len(rss)} RSS)")
    third = len(cpu) // 3
    first = statistics.median(c for _, c in cpu[:third])
    last = statistics.median(c for _, c in cpu[-third:])
    growth = max(m for _, m in rss) - rss[0][1]
    how = (f"app.gui.live.bench, 8 channels at 1 kHz through parser → store → plots, "
           f"{seconds:.0f} s, sampled every 2 s; {got['frames']} frames, frame p95 "
           f"{got['frame_ms_p95']} ms")
    series = {"cpu_pct": got["cpu_pct"], "rss_mb": got["rss_mb"]}
    return [
        Figure("live_cpu_drift_pct", round(last - first, 1), "% of a core", 5.0, "<=",
               f"CPU flat: last third {last:.0f} % vs first third {first:.0f} % of a core",
               how, samples=[], extra=series),
        Figure("live_rss_growth_mb", round(growth, 1), "MB", 20.0, "<=",
               f"memory bounded: RSS {rss[0][1]:.0f} → max {max(m for _, m in rss):.0f} MB "
               f"after 40 % of the run", how, samples=[]),
    ]


def run(quick: bool) -> list[Figure]:
    seconds = 8.0 if quick else 30.0
    runs = {name: _measure(name, seconds) for name in LAYOUTS}
    eight = {k: v for k, v in runs.items() if k != "arduino16"}
    worst = max(eight, key=lambda f: eight[f]["p95"])
    got = eight[worst]
    sixteen = runs["arduino16"]
    how = (f"GUI's LiveDashboard fed through a DeviceSession on a pty (the store attached "
           f"to it, as in the app); frame = tick + the paint that follows at 40 Hz for "
           f"{seconds:.0f} s after the window filled, offscreen software rendering")
    live_s = float(os.environ.get("TINYOPS_BENCH_LIVE_S") or (60 if quick else 120))
    return [
        Figure("plot_p95_ms", got["p95"], "ms", 16.7, "<=",
               f"one frame at 60 Hz (16.7 ms); median {got['frame_ms_median']:.1f} ms",
               f"{how}; 8 channels × 5 s at 1 kHz, the worse of two layouts is the figure: "
               f"{_describe(eight)}", samples=[], extra=_extra(eight)),
        Figure("plot16_p95_ms", sixteen["p95"], "ms", 16.7, "<=",
               f"one frame at 60 Hz (16.7 ms); median {sixteen['frame_ms_median']:.1f} ms",
               f"{how}; 16 channels × 10 s at 1 kHz: {_describe({'arduino16': sixteen})}",
               samples=[], extra=_extra({"arduino16": sixteen})),
        Figure("plot_floor_ratio", round(got["ratio"], 2), "×", 1.25, "<=",
               f"p95 {got['p95']:.1f} ms ÷ a bare pyqtgraph window's p95 "
               f"{got['floor_p95']:.1f} ms (same run); GUI-thread CPU {got['cpu_ratio']:.2f}×",
               FLOOR_HOW, samples=[]),
        Figure("plot16_floor_ratio", round(sixteen["ratio"], 2), "×", 1.25, "<=",
               f"p95 {sixteen['p95']:.1f} ms ÷ a bare pyqtgraph window's p95 "
               f"{sixteen['floor_p95']:.1f} ms (same run); GUI-thread CPU "
               f"{sixteen['cpu_ratio']:.2f}×", FLOOR_HOW, samples=[]),
        *_live_run(live_s),
    ]



