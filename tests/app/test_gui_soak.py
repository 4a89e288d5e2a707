"""Soak: plot a fast board for a long time, in a SUBPROCESS (a Qt crash such as PySide6
6.12.0's "Fatal Python error: none_dealloc" must fail the test, not kill pytest), and check
the process stays alive, keeps plotting, and its memory stays bounded.

The default run does reduced versions (>= 10 s each); ``-m soak`` runs the full ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _soak_selected(config: pytest.Config) -> bool:
    return "soak" in (config.getoption("-m") or "")


def _rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def _env(home: Path) -> dict[str, str]:
    env = dict(os.environ, TINYOPS_HOME=str(home), QT_QPA_PLATFORM="offscreen")
    env.pop("PYTEST_CURRENT_TEST", None)
    return env


def _check_memory(samples: list[tuple[float, float]], seconds: float, max_growth_mb: float,
                  warm_fraction: float = 0.4) -> None:
    """After warm-up (start-up done, rings filled to the window), memory must stay flat."""
    warm = [m for t, m in samples if t >= seconds * warm_fraction]
    assert len(warm) >= 3, f"too few memory samples: {samples}"
    growth = max(warm) - warm[0]
    assert growth < max_growth_mb, f"memory grew {growth:.1f} MB after warm-up: {samples}"


def run_fast_feed(seconds: float, home: Path) -> dict:
    """8 channels at 1 kHz through the real reader path (parser → store → dashboard)."""
    proc = subprocess.run(
        [sys.executable, "-m", "app.gui.live.bench", "--seconds", str(seconds),
         "--rate", "1000", "--window-points", "5000", "--json"],
        cwd=ROOT, env=_env(home), capture_output=True, text=True, timeout=seconds + 120)
    assert proc.returncode == 0, f"plotting process died (rc {proc.returncode}):\n" \
                                 f"{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_demo_app(seconds: float, home: Path, shot: Path) -> tuple[dict, list]:
    """The real app (``tinyops gui --demo``) on the fastest virtual board stream."""
    config = home / "config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "gui.ini").write_text("[live]\nperiod_ms=10\nwindow_s=10\n")
    cmd = [sys.executable, "-m", "app.cli", "gui", "--demo", "--json", "--quit-after",
           str(seconds), "--screenshot", str(shot)]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(home), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    rss: list[tuple[float, float]] = []
    while proc.poll() is None and time.monotonic() - started < seconds + 90:
        mb = _rss_mb(proc.pid)
        if mb is not None:
            rss.append((round(time.monotonic() - started, 1), mb))
        time.sleep(0.5)
    if proc.poll() is None:
        proc.kill()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, f"the app died (rc {proc.returncode}):\n{err[-3000:]}"
    return json.loads(out.strip().splitlines()[-1]), rss


def _fast_feed_case(seconds: float, tmp_path: Path) -> None:
    r = run_fast_feed(seconds, tmp_path)
    assert r["channels"] == 8
    assert r["samples_plotted"] >= 0.8 * 8 * 1000 * seconds * 0.9, r  # kept up with the feed
    assert r["dropped"] == 0, r
    assert r["frames"] >= seconds * 5, r  # it kept redrawing (>= 5 fps even on a busy box)
    assert r["points_drawn_max"] <= 2 * 1400, r  # decimated to the pixel width
    assert r["points_in_rings_max"] <= 16384, r  # rings hold the window, not the history
    _check_memory(r["rss_mb"], seconds, max_growth_mb=25)


def _demo_case(seconds: float, tmp_path: Path) -> None:
    shot = tmp_path / "soak.png"
    report, rss = run_demo_app(seconds, tmp_path / "home", shot)
    assert report["ok"] and report["unexpected_errors"] == 0, report
    assert report["tf_imported_at_start"] is False
    assert report["samples"] > 200, report  # the virtual board kept streaming
    assert shot.is_file() and shot.stat().st_size > 10_000
    # the app needs a few seconds to start (virtual board, interpreter worker, flash)
    _check_memory(rss, seconds, max_growth_mb=30, warm_fraction=0.65 if seconds < 30 else 0.3)


def test_fast_feed_reduced(tmp_path: Path) -> None:
    _fast_feed_case(10.0, tmp_path)


def test_demo_app_reduced(tmp_path: Path) -> None:
    _demo_case(12.0, tmp_path)


@pytest.mark.soak
def test_fast_feed_soak(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not _soak_selected(request.config):
        pytest.skip("long run: use -m soak")
    _fast_feed_case(float(os.environ.get("TINYOPS_SOAK_S", "90")), tmp_path)


@pytest.mark.soak
def test_demo_app_soak(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if not _soak_selected(request.config):
        pytest.skip("long run: use -m soak")
    _demo_case(float(os.environ.get("TINYOPS_SOAK_S", "90")), tmp_path)
