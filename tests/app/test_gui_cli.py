"""``tinyops gui`` from the command line: argument errors, and a clean headless run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from app.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_screenshot_needs_quit_after(capsys) -> None:
    assert main(["gui", "--screenshot", "x.png"]) == 2
    err = capsys.readouterr().err
    assert "--screenshot needs --quit-after" in err and "fix:" in err


def test_gui_runs_headless_without_tensorflow_and_reports(tmp_path: Path) -> None:
    env = dict(os.environ, TINYOPS_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    shot = tmp_path / "shot.png"
    proc = subprocess.run(
        [sys.executable, "-m", "app.cli", "gui", "--no-auto-demo", "--quit-after", "2.5",
         "--screenshot", str(shot), "--json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["ok"] and report["unexpected_errors"] == 0
    assert report["tf_imported_at_start"] is False  # the window opens without TensorFlow
    assert 0 < report["start_s"] < 60
    assert report["screenshot"] == str(shot) and shot.stat().st_size > 5000
    assert (tmp_path / "config" / "gui.ini").is_file()  # settings under TINYOPS_HOME
