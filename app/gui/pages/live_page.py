"""The Live page: the dashboard plus its controls (window, pause, autoscale, record, replay)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.live.controls import RecBadge, ReplayBar
from app.gui.workers import Job, JobError, JobRunner, describe_error
from app.state.live_channels import WINDOWS_S
from app.state.live_store import ChannelStore

log = logging.getLogger(__name__)


def window_text(seconds: float) -> str:
    return f"{seconds:g} s" if seconds < 60 else f"{seconds / 60:g} min"


KIOSK_FPS = 25.0


class LivePage(QWidget):
    """Controls plus the dashboard. The dashboard (and pyqtgraph with it) is built after the
    window is on screen (:meth:`build`, or on first use): the window opens ~0.7 s sooner.
    Telemetry that arrives before that waits in :attr:`store`."""

    error = Signal(object)  # JobError
    info = Signal(str)
    lines_received = Signal(list)  # forwarded from the dashboard
    status_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None, window_s: float = 30.0,
                 autoscale: bool = True) -> None:
        super().__init__(parent)
        self.store = ChannelStore()
        self._dash = None
        self._kiosk = False
        self._window_s = float(window_s)
        self._autoscale = autoscale
        self._empty_text: str | None = None
        self._replay = None  # ReplaySource while one plays
        self._loader: Job | None = None  # reading a recording (a JobRunner job)
        self._jobs = JobRunner(self, max_threads=1)
        self._replay_timer = QTimer(self)
        self._replay_timer.setInterval(200)
        self._replay_timer.timeout.connect(self._replay_tick)
        self.placeholder = QLabel("Starting the live view…", self)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.placeholder.setProperty("role", "muted")

        bar = QHBoxLayout()
        bar.setContentsMargins(8, 6, 8, 0)
        bar.setSpacing(6)
        bar.addWidget(QLabel("Window", self))
        self.window_combo = QComboBox(self)
        for s in WINDOWS_S:
            self.window_combo.addItem(window_text(s), s)
        self.window_combo.setToolTip("Rolling time window shown (1 s to 10 min)")
        self.window_combo.currentIndexChanged.connect(self._window_changed)
        bar.addWidget(self.window_combo)
        self.pause_button = self._tool("Pause", "Freeze the plots to zoom and read values "
                                       "(Space); data keeps being recorded", checkable=True)
        self.pause_button.toggled.connect(lambda on: self.dashboard.set_paused(on))
        self.auto_button = self._tool("Autoscale", "Fit the y axes to the visible data (A)",
                                      checkable=True)
        self.auto_button.setChecked(autoscale)
        self.auto_button.toggled.connect(self._autoscale_toggled)
        self.record_button = self._tool("Record…", "Record every sample to a CSV file (Ctrl+R)",
                                        checkable=True)
        self.record_button.clicked.connect(self._record_clicked)
        self.replay_button = self._tool("Replay…", "Play back a CSV recording")
        self.replay_button.clicked.connect(lambda: self._replay_clicked(self.before_replay))
        self.before_replay: Callable[[], object] | None = None  # e.g. disconnect the board
        self.export_button = self._tool("Export PNG…", "Save the dashboard as an image (Ctrl+E)")
        self.export_button.clicked.connect(self._export_clicked)
        self.clear_button = self._tool("Clear", "Forget the plotted data")
        self.clear_button.clicked.connect(lambda: self.dashboard.clear())
        self.follow_button = self._tool("Follow", "Back to the rolling window, newest data "
                                        "at the right edge (F). Wheel: zoom time; "
                                        "Ctrl+wheel: zoom values")
        self.follow_button.clicked.connect(self.follow)
        for b in (self.pause_button, self.auto_button, self.follow_button, self.record_button,
                  self.replay_button, self.export_button, self.clear_button):
            bar.addWidget(b)
        self.rec_badge = RecBadge(self)  # its own row: the bar must fit 1024 px with it
        self.rec_badge.stop_requested.connect(self._record_clicked)
        self.source_label = QLabel("", self)
        self.source_label.setProperty("role", "muted")
        self.source_label.setAlignment(Qt.AlignmentFlag.AlignRight
                                       | Qt.AlignmentFlag.AlignVCenter)
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.Preferred)  # cut, never widen
        bar.addWidget(self.source_label, 1)  # the room left over (the status bar says it too)
        self.controls = QWidget(self)
        self.controls.setLayout(bar)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.controls)
        lay.addWidget(self.rec_badge, 0, Qt.AlignmentFlag.AlignLeft)
        self.replay_bar = ReplayBar(self)
        self.replay_bar.seek_requested.connect(self._replay_seek)
        self.replay_bar.speed_changed.connect(self._replay_speed)
        self.replay_bar.stop_requested.connect(self.stop_replay)
        lay.addWidget(self.replay_bar)
        lay.addWidget(self.placeholder, 1)
        self.set_window(window_s)
        # single-key shortcuts act only while this page (or a child) has focus: it takes
        # the focus when shown
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        for key, slot in (("F", self.follow), ("Home", self.follow)):
            sc = QShortcut(QKeySequence(key), self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    def showEvent(self, event) -> None:  # type: ignore[no-untyped-def]
        super().showEvent(event)
        QTimer.singleShot(0, self.setFocus)

    # ------------------------------------------------------------------ the dashboard
    @property
    def built(self) -> bool:
        return self._dash is not None

    @property
    def dashboard(self):
        if self._dash is None:
            self.build()
        return self._dash

    def build(self) -> None:
        """Import pyqtgraph and build the dashboard (idempotent)."""
        if self._dash is not None:
            return
        from app.gui.live.dashboard import LiveDashboard

        dash = LiveDashboard(self, window_s=self._window_s, store=self.store,
                             fps=KIOSK_FPS if self._kiosk else 40.0)
        dash.lean_axes = self._kiosk  # profiled: axis text was 20 % of the kiosk's CPU
        dash.set_autoscale(self._autoscale)
        dash.recording_changed.connect(self.record_button.setChecked)
        dash.recording_changed.connect(lambda on: self.rec_badge.track(dash.recorder if on
                                                                       else None))
        dash.follow_changed.connect(self._follow_changed)
        dash.lines_received.connect(self.lines_received)
        dash.status_changed.connect(self.status_changed)
        if self._empty_text:
            dash.set_empty_text(self._empty_text)
        self._dash = dash
        # small screens (1024×600): the dashboard scrolls sideways rather than pushing the
        # window past the screen's edge
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(dash)
        lay = self.layout()
        lay.replaceWidget(self.placeholder, scroll)
        self.placeholder.deleteLater()
        dash.show()

    @property
    def window_s(self) -> float:
        return self._dash.window_s if self._dash is not None else self._window_s

    @property
    def autoscale(self) -> bool:
        return self._dash.autoscale if self._dash is not None else self._autoscale

    def _autoscale_toggled(self, on: bool) -> None:
        self._autoscale = on
        if self._dash is not None:
            self._dash.set_autoscale(on)

    def set_empty_text(self, text: str) -> None:
        self._empty_text = text
        if self._dash is not None:
            self._dash.set_empty_text(text)

    def new_segment(self) -> None:
        if self._dash is not None:
            self._dash.new_segment()

    def _tool(self, text: str, tip: str, checkable: bool = False) -> QToolButton:
        b = QToolButton(self)
        b.setText(text)
        b.setToolTip(tip)
        b.setCheckable(checkable)
        b.setAutoRaise(False)
        return b

    # ------------------------------------------------------------------ actions
    def set_window(self, seconds: float) -> None:
        idx = min(range(len(WINDOWS_S)), key=lambda i: abs(WINDOWS_S[i] - seconds))
        self.window_combo.setCurrentIndex(idx)
        self._window_changed(idx)

    def _window_changed(self, idx: int) -> None:
        self._window_s = float(self.window_combo.itemData(idx))
        if self._dash is not None:
            self._dash.set_window(self._window_s)

    def toggle_pause(self) -> None:
        self.pause_button.toggle()

    def toggle_autoscale(self) -> None:
        self.auto_button.toggle()

    def set_source(self, text: str, alert: bool = False) -> None:
        self.source_label.setText(text)
        self.source_label.setStyleSheet("color: #d64541; font-weight: 600;" if alert else "")

    def reset_view(self) -> None:
        """Another source: forget the plotted data and panels (an empty view)."""
        if self._dash is not None:
            self._dash.reset()

    def _record_clicked(self) -> None:
        if self._dash is not None and self._dash.recorder is not None:
            rows = self._dash.stop_recording()
            self.info.emit(f"recording stopped: {rows:,} samples written")
            return
        self.record_button.setChecked(False)
        path, _ = QFileDialog.getSaveFileName(self, "Record telemetry to", "telemetry.csv",
                                              "CSV files (*.csv)")
        if path:
            self.start_recording(path)

    def start_recording(self, path: str) -> bool:
        try:
            self.dashboard.start_recording(path)
        except Exception as exc:
            self.error.emit(describe_error(exc))
            return False
        self.info.emit(f"recording to {path}")
        return True

    def follow(self) -> None:
        """Rolling window again: newest data at the right edge, y fitted, not paused."""
        self.pause_button.setChecked(False)
        self.dashboard.follow()

    def _follow_changed(self, following: bool) -> None:
        self.follow_button.setText("Follow" if following else "● Follow (reset view)")
        if not following and not self.pause_button.isChecked():
            self.pause_button.blockSignals(True)
            self.pause_button.setChecked(True)
            self.pause_button.blockSignals(False)

    def pick_replay_file(self) -> str:
        path, _ = QFileDialog.getOpenFileName(self, "Replay a recording", "",
                                              "CSV files (*.csv);;All files (*)")
        return path

    def _replay_clicked(self, before: Callable[[], object] | None = None) -> None:
        """Ask for a file; only once one is picked, run ``before`` (disconnect) and play."""
        path = self.pick_replay_file()
        if path:
            if before is not None:
                before()
            self.start_replay(path)

    def start_replay(self, path: str, speed: float = 1.0) -> Job:
        """Load a recording (a job: off the GUI thread), then play it through the live data
        path (the caller disconnects any live board first). Returns the loading job."""
        from app.state.live_recording import load_recording

        self.stop_replay()
        loader = self._jobs.submit(load_recording, path, name="load recording",
                                   pass_context=False)
        loader.succeeded.connect(lambda rec: self._loader is loader
                                 and self._play(rec, Path(path).name, speed))
        loader.failed.connect(self._replay_failed)
        self._loader = loader
        self.set_source(f"loading {Path(path).name}…")
        return loader

    def _play(self, rec, name: str, speed: float) -> None:  # type: ignore[no-untyped-def]
        from app.state.live_recording import ReplaySource

        self.dashboard.reset()
        self._replay = ReplaySource(rec, speed)
        self.store.attach(self._replay)
        self.replay_bar.start(name, self._replay.duration, speed)
        self._replay_timer.start()
        self.set_source(f"replaying {name}")

    def _replay_tick(self) -> None:
        src = self._replay
        if src is None:
            return
        finished = src.finished
        self.replay_bar.show_position(src.position, finished)
        if finished:
            self._replay_timer.stop()
            self.set_source(f"replay finished · {src.pushed:,} samples")

    def _replay_seek(self, seconds: float) -> None:
        if self._replay is not None:
            self.dashboard.clear()
            self._replay.seek(seconds)
            self.replay_bar.show_position(self._replay.position, False)
            self._replay_timer.start()

    def _replay_speed(self, speed: float) -> None:
        if self._replay is not None:
            self._replay.set_speed(speed)

    @property
    def replaying(self) -> bool:
        return self._replay is not None and not self._replay.finished

    def _replay_failed(self, err: JobError) -> None:
        self.set_source("")
        self.error.emit(err)

    def stop_replay(self) -> None:
        if self._loader is not None:
            self._loader.cancel()
        self._loader = None
        if self._replay is not None:
            self.store.detach(self._replay)
            self._replay = None
            self._replay_timer.stop()
            self.replay_bar.hide()
            self.set_source("")

    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the dashboard", "tinyops-live.png",
                                              "PNG images (*.png)")
        if path:
            self.export_png(path)

    def export_png(self, path: str) -> bool:
        ok = self.dashboard.export_png(path)
        if ok:
            self.info.emit(f"saved {path}")
        else:
            self.error.emit(JobError(f"could not write {path}", "pick a folder you can write to"))
        return ok

    def set_kiosk(self, kiosk: bool) -> None:
        """A stand: no controls, and 25 frames/s (telemetry comes at 20 Hz; the kiosk's CPU
        for a 30 s window stays under 40 % of a core)."""
        self.controls.setVisible(not kiosk)
        self._kiosk = kiosk

    def shutdown(self) -> None:
        self.stop_replay()
        if self._dash is not None:
            self._dash.shutdown()
