"""The Fleet page's small per-device plot: top score and latency of each message (raw), or
the top class's share per period (summary messages)."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import QApplication, QLabel, QMenu, QVBoxLayout, QWidget


class DevicePlot(QWidget):
    """The chosen device: top score and latency per message (raw), class counts (summary).

    The pyqtgraph plot is built when the page is first shown or data first arrives: the
    window opens without importing pyqtgraph (about 0.5 s of a cold start)."""

    MAX_POINTS = 2000

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("Choose a device in the table", self)
        self.plot: Any = None
        self.top: Any = None
        self.latency: Any = None
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.addWidget(self.title)
        self.clear(None)

    def build(self) -> None:
        """Import pyqtgraph and build the plot (idempotent)."""
        if self.plot is not None:
            return
        import pyqtgraph as pg

        before = {id(w) for w in QApplication.topLevelWidgets()}
        self.plot = pg.PlotWidget(self)
        for w in QApplication.topLevelWidgets():  # pyqtgraph's parentless menus: ours
            if id(w) not in before and isinstance(w, QMenu) and w.parent() is None:
                w.setParent(self, w.windowFlags())
        self.plot.addLegend(offset=(5, 5))
        self.plot.setLabel("bottom", "seconds ago")
        self.top = self.plot.plot([], [], pen=pg.mkPen("#2a7fff", width=2), name="top score")
        self.latency = self.plot.plot([], [], pen=pg.mkPen("#e07b00", width=1),
                                      name="latency (ms)")
        self._layout.addWidget(self.plot, 1)

    def showEvent(self, event: QShowEvent) -> None:
        self.build()
        super().showEvent(event)

    def clear(self, device: str | None) -> None:
        self.device = device
        self.points: deque[tuple[float, float | None, float | None]] = deque(
            maxlen=self.MAX_POINTS)
        self.title.setText(f"Device {device}" if device else "Choose a device in the table")
        if self.plot is not None:
            self.top.setData([], [])
            self.latency.setData([], [])

    def add(self, batch: list[tuple[float, dict[str, Any]]]) -> None:
        for t, data in batch:
            scores, summary = data.get("scores"), data.get("summary")
            top = max(scores.values()) if isinstance(scores, dict) and scores else None
            lat = data.get("latency_us")
            if isinstance(summary, dict):  # one point per period: its share of the top class
                counts = summary.get("counts") or {}
                n = sum(counts.values()) or 1
                top = max(counts.values(), default=0) / n
                lat = summary.get("latency_us_p50")
            self.points.append((t, top, lat / 1000.0 if isinstance(lat, (int, float)) else None))
        self.build()
        now = time.time()
        for curve, i in ((self.top, 1), (self.latency, 2)):
            pts = [(p[0] - now, p[i]) for p in self.points if p[i] is not None]
            curve.setData([p[0] for p in pts], [p[1] for p in pts])
