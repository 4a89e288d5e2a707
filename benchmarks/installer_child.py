"""Child of ``benchmarks.installer``: the main window's RSS idle, and after a quantize job.

Opens the window (offscreen, no board, no demo), waits until it is idle, measures its own
RSS, quantizes the bundled example through the Model page (the job runs in the model worker
process, where TensorFlow loads), waits for the job to end and settle, measures again.
Prints one JSON line.
"""

from __future__ import annotations

import gc
import json
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.common import EXAMPLE_DIR, rss_mb


def _wait(app, predicate, timeout: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
        app.processEvents()
        time.sleep(0.02)


def _settle(app, seconds: float) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def main() -> None:
    import os

    from PySide6.QtWidgets import QApplication

    from app.gui.main_window import MainWindow, WindowOptions

    app = QApplication.instance() or QApplication([])
    win = MainWindow(WindowOptions(auto_demo=False, watch=False))
    win.show()
    win.start()
    _settle(app, 5.0)
    idle = rss_mb(os.getpid())
    page = win.model_page
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.keras"
        shutil.copy(EXAMPLE_DIR / "model.keras", src)
        shutil.copy(EXAMPLE_DIR / "labels.txt", Path(tmp) / "labels.txt")
        page.path.setText(str(src))
        page.calib.setText(str(EXAMPLE_DIR / "calib.npz"))
        page.eval.setText(str(EXAMPLE_DIR / "eval.npz"))
        done = {"end": False}
        started = time.monotonic()
        job = page.quantize()
        if job is None:
            raise RuntimeError("the Model page did not start a quantize job")
        job.finished.connect(lambda *_: done.__setitem__("end", True))
        _wait(app, lambda: done["end"], 600)
        job_s = time.monotonic() - started
        if job.error is not None:
            raise RuntimeError(job.error.text())
        _settle(app, 5.0)
        gc.collect()
        after = rss_mb(os.getpid())
    win.shutdown()
    print(json.dumps({"idle_mb": round(idle or 0, 1), "after_mb": round(after or 0, 1),
                      "job_s": round(job_s, 1)}))


if __name__ == "__main__":
    main()
