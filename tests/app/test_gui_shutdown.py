"""Keep the window working (issue 11, item 9): SIGTERM/SIGINT shut the app down cleanly and
fast; closing the window takes under a second."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX signals")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_shuts_the_demo_down_cleanly(qtbot, tmp_path: Path,
                                              sig: signal.Signals) -> None:
    env = dict(os.environ, TINYOPS_HOME=str(tmp_path), QT_QPA_PLATFORM="offscreen")
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "gui", "--demo"], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        try:
            def demo_running() -> bool:
                return any("demo board" in f.read_text(errors="replace")
                           for f in tmp_path.rglob("tinyops.log"))

            qtbot.waitUntil(demo_running, timeout=60000)
            settings = list(tmp_path.rglob("gui.ini"))
            before = {p: p.stat().st_mtime_ns for p in settings}
            t0 = time.monotonic()
            proc.send_signal(sig)
            code = proc.wait(timeout=10)
            took = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert code == 0, log.read_text(errors="replace")[-2000:]
    assert took < 5.0
    ini = list(tmp_path.rglob("gui.ini"))
    assert ini, "settings were not saved"
    text = ini[0].read_text()
    assert "geometry" in text and "window_s" in text  # what _save() writes on shutdown
    assert any(p not in before or p.stat().st_mtime_ns != before[p] for p in ini)
    text_log = "".join(f.read_text(errors="replace") for f in tmp_path.rglob("tinyops.log"))
    assert f"signal {sig.name}: shutting down" in text_log


def test_the_window_closes_within_a_second_while_streaming(qtbot, make_window) -> None:
    win = make_window(demo=True, watch=False)
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=30000)
    qtbot.waitUntil(lambda: win.live.store.total_samples > 50, timeout=30000)
    qtbot.waitUntil(lambda: not win.runner.active, timeout=30000)  # the demo flash is done
    t0 = time.monotonic()
    win.close()
    took = time.monotonic() - t0
    assert took < 1.0, f"closing took {took:.2f} s"
    assert win.link.session is None and not win.demo.running


def test_closing_during_a_tensorflow_job_does_not_wait_for_it(qtbot, make_window) -> None:
    from device_drivers import paths

    win = make_window(watch=False)
    page = win.model_page
    page.path.setText(str(paths.resources_dir() / "examples" / "vibration" / "model.keras"))
    job = page.analyze()
    qtbot.waitUntil(lambda: page.worker.pid is not None, timeout=10000)
    t0 = time.monotonic()
    win.close()
    took = time.monotonic() - t0
    assert took < 1.5, f"closing took {took:.2f} s"
    assert page.worker.pid is None
    qtbot.waitUntil(lambda: not job.running, timeout=2000)
    assert job.error is not None and job.error.cancelled
