"""``plot_p95_ms``: p95 frame time of the GUI's live dashboard at 8 channels × 1 kHz, 5 s window.

Runs ``benchmarks/plot_child.py`` in a child process with ``QT_QPA_PLATFORM=offscreen`` (see
there for the data path). A frame is ``LiveDashboard.tick()`` (drain, ring buffers,
``setData`` on 8 curves of 5 000 points, clip to view, peak downsampling) plus a synchronous
repaint of the plot view. Target: ≤ 16.7 ms (one frame at 60 Hz).
"""

from __future__ import annotations

from benchmarks.common import (
    BenchmarkError,
    Figure,
    child_env,
    last_json_line,
    percentile,
    python,
    run_child,
)


def _measure(fmt: str, seconds: float) -> dict:
    proc = run_child([python(), "-m", "benchmarks.plot_child", "--seconds", str(seconds),
                      "--format", fmt], env=child_env(), timeout=seconds + 120)
    got = last_json_line(proc.stdout)
    frames = got["frame_ms"]
    if len(frames) < 20:
        raise BenchmarkError(f"{fmt}: only {len(frames)} frames were drawn")
    if got["paints"] < len(frames) * 0.9:
        raise BenchmarkError(f"{fmt}: the view painted {got['paints']} times for "
                             f"{len(frames)} frames")
    if got["points_held_min"] < 4500 or got["channels"] != 8:
        raise BenchmarkError(f"{fmt}: the dashboard held {got['points_held_min']} points on "
                             f"{got['channels']} channels, not 8 × 5000")
    got["p95"] = percentile(frames, 0.95)
    return got


def run(quick: bool) -> list[Figure]:
    seconds = 8.0 if quick else 30.0
    runs = {fmt: _measure(fmt, seconds) for fmt in ("json", "arduino")}
    worst = max(runs, key=lambda f: runs[f]["p95"])
    got = runs[worst]
    per = "; ".join(
        f"{fmt} ({r['panels']} panel{'s' if r['panels'] > 1 else ''}): p95 {r['p95']:.1f} ms, "
        f"median {r['frame_ms_median']:.1f} ms (tick/setData {r['tick_ms_median']:.1f} ms), "
        f"{r['samples_per_s']:.0f} samples/s, {len(r['frame_ms'])} frames"
        for fmt, r in runs.items())
    return [Figure(
        "plot_p95_ms", got["p95"], "ms", 16.7, "<=",
        f"one frame at 60 Hz (16.7 ms); median {got['frame_ms_median']:.1f} ms",
        f"GUI's LiveDashboard, 8 channels × {got['points_held_min']}+ points held (5 s at "
        f"1 kHz), fed through a DeviceSession on a pty; frame = tick (drain, rings, setData) "
        f"+ synchronous repaint, driven at 40 Hz for {seconds:.0f} s after the window filled; "
        f"the worse of two layouts is the figure: {per}; at most {got['points_drawn_max']} "
        f"points per curve after clip/downsample; child RSS {got['rss_mb']:.0f} MB",
        samples=[], extra={fmt: {"p95": round(r["p95"], 2),
                                 "median": round(r["frame_ms_median"], 2),
                                 "tick_median": round(r["tick_ms_median"], 2),
                                 "frames": len(r["frame_ms"]), "panels": r["panels"],
                                 "samples_per_s": round(r["samples_per_s"]),
                                 "dropped": r["dropped"], "rss_mb": r["rss_mb"]}
                           for fmt, r in runs.items()})]
