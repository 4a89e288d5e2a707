"""Start the desktop app: QApplication, theme, main window, screenshot/quit timers.

``run`` returns the process exit code: 0 when the app ran cleanly (no unexpected
exception in any slot, screenshot written if asked), 1 otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
_T_IMPORT = time.monotonic()


@dataclass
class GuiOptions:
    demo: bool = False
    kiosk: bool = False
    port: str | None = None
    screenshot: str | None = None
    quit_after: float | None = None
    auto_demo: bool = True


@dataclass
class RunReport:
    ok: bool = True
    start_s: float | None = None
    first_data_s: float | None = None  # process start → first telemetry sample received
    tf_imported_at_start: bool = False
    screenshot: str | None = None
    unexpected_errors: int = 0
    frame_ms_p50: float | None = None
    frame_ms_p95: float | None = None
    samples: int = 0
    messages: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def process_age_s() -> float:
    """Seconds since this process started (Linux: from /proc; else since this module loaded)."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])
        hz = os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - start_ticks / hz)
    except (OSError, ValueError, IndexError):
        return time.monotonic() - _T_IMPORT


def run(options: GuiOptions) -> RunReport:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.gui import theme

    report = RunReport()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("TinyOps")
    app.setApplicationDisplayName("TinyOps")
    app.setOrganizationName("tinyops")
    app.setDesktopFileName("tinyops")
    theme.apply(app)

    previous_hook = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        report.unexpected_errors += 1
        previous_hook(exc_type, exc, tb)

    sys.excepthook = hook

    from app.gui.main_window import MainWindow, WindowOptions

    window = MainWindow(WindowOptions(demo=options.demo, kiosk=options.kiosk, port=options.port,
                                      auto_demo=options.auto_demo))
    with contextlib.suppress(AttributeError):  # follow the OS light/dark switch (Qt >= 6.5)
        app.styleHints().colorSchemeChanged.connect(lambda *_: window.follow_color_scheme())
    if options.kiosk:
        window.showFullScreen()
    else:
        if options.screenshot:  # docs and bug reports: the same size every time
            window.resize(1440, 900)
        window.show()

    def shown() -> None:
        report.start_s = round(process_age_s(), 3)
        report.tf_imported_at_start = "tensorflow" in sys.modules
        log.info("window shown %.3f s after process start (TensorFlow imported: %s)",
                 report.start_s, report.tf_imported_at_start)
        window.start()

    QTimer.singleShot(0, shown)

    def first_data() -> None:
        if report.first_data_s is None and window.live.store.total_samples:
            report.first_data_s = round(process_age_s(), 3)
            data_probe.stop()

    data_probe = QTimer()
    data_probe.timeout.connect(first_data)
    data_probe.start(20)

    if options.quit_after is not None:
        total_ms = int(max(0.0, options.quit_after) * 1000)
        if options.screenshot:
            def grab() -> None:
                path = Path(options.screenshot).expanduser()
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    ok = window.grab().save(str(path), "PNG")
                except OSError:
                    ok = False
                if ok:
                    report.screenshot = str(path)
                else:
                    report.ok = False
                    report.messages.append(f"could not write the screenshot {path}")
            QTimer.singleShot(max(0, total_ms - 400), grab)
        QTimer.singleShot(total_ms, app.quit)

    signal.signal(signal.SIGINT, lambda *_: app.quit())
    keepalive = QTimer()  # lets Python run its signal handlers while Qt waits
    keepalive.timeout.connect(lambda: None)
    keepalive.start(250)

    try:
        app.exec()
    finally:
        keepalive.stop()
        data_probe.stop()
        dash = window.live.dashboard if window.live.built else None
        frames = sorted(dash.frame_ms) if dash is not None else []
        if frames:
            report.frame_ms_p50 = round(frames[len(frames) // 2], 2)
            report.frame_ms_p95 = round(frames[int(len(frames) * 0.95)], 2)
        report.samples = dash.samples_total if dash is not None else 0
        if window.message.level == "error":
            report.messages.append(window.message.message)
        window.shutdown()
        window.deleteLater()
        sys.excepthook = previous_hook
    if report.unexpected_errors:
        report.ok = False
    return report
