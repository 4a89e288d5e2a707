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
from collections.abc import Callable
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


def install_signal_handlers(app: Any) -> Callable[[], None]:
    """SIGTERM and SIGINT quit the Qt event loop cleanly (the window saves its settings and
    stops streaming in ``shutdown``). POSIX: the C-level handler writes to a self-pipe
    (``signal.set_wakeup_fd``) that a ``QSocketNotifier`` watches, so the signal is seen
    at once even while Qt sleeps in its event loop. Elsewhere a 200 ms timer lets Python
    run its handlers. Returns a function that restores the previous state."""
    from PySide6.QtCore import QSocketNotifier, QTimer

    received: list[int] = []

    def handler(signum: int, _frame: Any) -> None:
        if not received:
            log.info("signal %s: shutting down", signal.Signals(signum).name)
        received.append(signum)
        app.quit()

    sigs = [signal.SIGINT] + ([signal.SIGTERM] if hasattr(signal, "SIGTERM") else [])
    previous = {sig: signal.signal(sig, handler) for sig in sigs}
    keep: list[Any] = []
    old_fd = None
    if os.name == "posix":
        r, w = os.pipe()
        os.set_blocking(r, False)
        os.set_blocking(w, False)
        old_fd = signal.set_wakeup_fd(w)
        notifier = QSocketNotifier(r, QSocketNotifier.Type.Read, app)

        def drain() -> None:
            with contextlib.suppress(OSError):
                os.read(r, 512)  # the Python-level handler runs as this slot returns

        notifier.activated.connect(drain)
        keep += [notifier, r, w]
    else:  # pragma: no cover - Windows
        timer = QTimer(app)
        timer.timeout.connect(lambda: None)
        timer.start(200)
        keep.append(timer)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        if os.name == "posix":
            signal.set_wakeup_fd(old_fd if old_fd is not None else -1)
            keep[0].setEnabled(False)
            for fd in keep[1:]:
                with contextlib.suppress(OSError):
                    os.close(fd)
        else:  # pragma: no cover
            keep[0].stop()

    return restore


def place_window(window: Any, kiosk: bool, size: tuple[int, int] | None = None) -> None:
    """Show the window inside the screen it opens on: clamped to the available geometry
    (a 1024×600 screen gets a window that fits, Connect buttons and status bar included).
    Kiosk: full screen, and the geometry set to the screen's, so it is full screen with or
    without a window manager."""
    screen = window.screen()
    if kiosk:
        window.setGeometry(screen.geometry())
        window.showFullScreen()
        return
    avail = screen.availableGeometry()
    if size is not None:
        window.resize(*size)
    w = min(window.width(), avail.width())
    h = min(window.height(), avail.height())
    window.resize(w, h)
    x = min(max(window.x(), avail.x()), avail.right() - w + 1)
    y = min(max(window.y(), avail.y()), avail.bottom() - h + 1)
    if (window.x(), window.y()) != (x, y):
        window.move(x, y)
    window.show()


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
    # docs and bug reports: the same size every time (as far as the screen allows)
    place_window(window, options.kiosk, (1440, 900) if options.screenshot else None)

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

    restore_signals = install_signal_handlers(app)

    try:
        app.exec()
    finally:
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
        restore_signals()
        sys.excepthook = previous_hook
    if report.unexpected_errors:
        report.ok = False
    return report
