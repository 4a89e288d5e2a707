"""The floor of a live-plot frame: a bare pyqtgraph window, no TinyOps code.

Run by ``benchmarks/plot_child.py`` in the same process, interleaved with the dashboard's
frames (one floor frame after each dashboard frame, so both see the same machine load: this
machine is shared): the same window size, the same panels in the same grid (big panel on
top, the others in up to 3 columns), the same curves with the same pens and the same points
the dashboard drew once its window was full. Each frame shifts the data and the x range by one frame
of time (so the axis ticks move as in the live view), calls ``setData`` on every curve and
lets Qt paint (``processEvents``), timed together as the dashboard's frames are.
pyqtgraph's defaults otherwise (no grid, no titles): what any pyqtgraph application pays
to draw these points, the figure a frame is compared with.
"""

from __future__ import annotations

import time
from typing import Any


def capture(dash: Any) -> list[dict]:
    """What the dashboard drew: per panel, its kind and each curve's points and pen."""
    panels = []
    for key in dash._order:
        panel = dash.panels[key]
        curves = []
        for curve in panel.curves.values():
            item = curve.item
            if item.xData is None or not len(item.xData):
                continue
            curves.append((item.xData.copy(), item.yData.copy(), item.opts["pen"]))
        panels.append({"big": key in ("scores", "signals"), "curves": curves,
                       "x_range": panel.plot.getViewBox().viewRange()[0],
                       "y_range": panel.plot.getViewBox().viewRange()[1]})
    return panels


class Floor:
    """The bare window; :meth:`frame` draws one frame and returns its time (ms)."""

    def __init__(self, panels: list[dict], size: tuple[int, int], fps: float) -> None:
        import pyqtgraph as pg
        from PySide6.QtWidgets import QApplication

        self.app = QApplication.instance()
        self.period = 1.0 / fps
        self.view = view = pg.GraphicsLayoutWidget()
        view.resize(*size)
        big = [p for p in panels if p["big"]]
        small = [p for p in panels if not p["big"]]
        cols = 2 if len(small) == 4 else max(1, min(3, len(small)))
        self.items = []
        for row, p in enumerate(big):
            self.items.append((view.addPlot(row=row, col=0, colspan=cols), p))
        for i, p in enumerate(small):
            self.items.append((view.addPlot(row=len(big) + i // cols, col=i % cols), p))
        self.drawn = []
        for plot, p in self.items:
            plot.disableAutoRange()
            plot.setYRange(*p["y_range"], padding=0)
            for t, v, pen in p["curves"]:
                self.drawn.append((plot.plot(pen=pen), t, v))
        view.show()
        self.app.processEvents()
        self.k = 0

    def frame(self) -> float:
        shift = self.k * self.period
        self.k += 1
        t0 = time.perf_counter()
        for plot, p in self.items:
            lo, hi = p["x_range"]
            plot.setXRange(lo + shift, hi + shift, padding=0)
        for curve, t, v in self.drawn:
            curve.setData(t + shift, v)
        self.view.scene().prepareForPaint()  # pyqtgraph's own call: else it paints twice
        for _ in range(3):  # as the dashboard's frames: the paint and what it queues
            self.app.processEvents()
        return (time.perf_counter() - t0) * 1000.0

    def close(self) -> None:
        self.view.close()
        self.view.deleteLater()
        self.app.processEvents()
