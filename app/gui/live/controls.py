"""Small controls of the Live page: the REC badge and the replay bar (timeline, speed, end)."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

SPEEDS = (0.5, 1.0, 2.0, 5.0, 20.0)


def size_text(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return f"{n} B"


def clock_text(seconds: float) -> str:
    s = int(seconds)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class RecBadge(QWidget):
    """● REC 0:42 · 1.2 MB [Stop] — visible while recording, updated twice a second."""

    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 4, 8, 0)
        lay.setSpacing(4)
        self.label = QLabel(self)
        self.label.setStyleSheet("color: white; background: #c0392b; border-radius: 4px;"
                                 " padding: 2px 8px; font-weight: 600;")
        self.stop = QToolButton(self)
        self.stop.setText("Stop")
        self.stop.setToolTip("Stop recording (Ctrl+R)")
        self.stop.clicked.connect(self.stop_requested)
        lay.addWidget(self.label)
        lay.addWidget(self.stop)
        self._recorder = None
        self._since = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(500)
        self._timer.timeout.connect(self.refresh)
        self.hide()

    def track(self, recorder) -> None:  # type: ignore[no-untyped-def]
        self._recorder = recorder
        if recorder is None:
            self._timer.stop()
            self.hide()
            return
        self._since = time.monotonic()
        self.refresh()
        self.show()
        self._timer.start()

    def refresh(self) -> None:
        rec = self._recorder
        if rec is None:
            return
        # compact: the bar must still fit a 1024-px screen with the badge showing
        self.label.setText(f"● REC {clock_text(time.monotonic() - self._since)} · "
                           f"{size_text(rec.bytes)}")
        self.label.setToolTip(f"Recording to {rec.path}: {rec.rows:,} samples written")

    @property
    def text(self) -> str:
        return f"{self.label.text()} · {self.label.toolTip()}"


class ReplayBar(QWidget):
    """Shown while a recording plays: position slider, speed, and its end state."""

    seek_requested = Signal(float)  # seconds into the recording
    speed_changed = Signal(float)
    stop_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 2, 8, 0)
        lay.setSpacing(6)
        self.name = QLabel(self)
        self.name.setMaximumWidth(260)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(0, 1000)
        self.slider.setToolTip("Where the replay is; drag to jump")
        self.slider.sliderReleased.connect(self._seek)
        self.slider.setMinimumWidth(80)
        self.position = QLabel("0:00 / 0:00", self)
        self.speed = QComboBox(self)
        for s in SPEEDS:
            self.speed.addItem(f"{s:g}×", s)
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip("Replay speed")
        self.speed.currentIndexChanged.connect(
            lambda i: self.speed_changed.emit(float(self.speed.itemData(i))))
        self.state = QLabel(self)
        self.state.setProperty("role", "muted")
        self.close_button = QToolButton(self)
        self.close_button.setText("Stop replay")
        self.close_button.clicked.connect(self.stop_requested)
        for w in (self.name, self.slider, self.position, self.speed, self.state,
                  self.close_button):
            lay.addWidget(w, 1 if w is self.slider else 0)
        self.duration = 0.0
        self.hide()

    def start(self, name: str, duration: float, speed: float) -> None:
        self.file = name
        self.name.setText(self.name.fontMetrics().elidedText(
            f"Replaying {name}", Qt.TextElideMode.ElideMiddle, 240))
        self.name.setToolTip(name)
        self.duration = duration
        idx = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - speed))
        self.speed.blockSignals(True)
        self.speed.setCurrentIndex(idx)
        self.speed.blockSignals(False)
        self.state.setText("playing")
        self.show()

    def show_position(self, seconds: float, finished: bool) -> None:
        if not self.slider.isSliderDown():
            frac = seconds / self.duration if self.duration > 0 else 1.0
            self.slider.setValue(round(1000 * frac))
        self.position.setText(f"{clock_text(seconds)} / {clock_text(self.duration)}")
        self.state.setText("finished" if finished else "playing")
        self.state.setToolTip("the end of the recording was reached; drag the timeline to "
                              "play a part again" if finished else "")

    def _seek(self) -> None:
        self.seek_requested.emit(self.slider.value() / 1000 * self.duration)
