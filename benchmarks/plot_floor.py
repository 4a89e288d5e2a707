"""The floor of a live-plot frame: a bare pyqtgraph window, no TinyOps code.

Run by ``benchmarks/plot_child.py`` in the same process right after the dashboard was
measured: the same window size, the same panels in the same grid (big panel on top, the
others in up to 3 columns), the same curves with the same pens and the same points the
dashboard drew in its last frame. Each frame shifts the data and the x range by one frame
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


def measure(panels: list[dict], size: tuple[int, int], fps: float, seconds: float
            ) -> list[float]:
    """Frame times (ms) of a bare pyqtgraph window drawing ``panels`` for ``seconds``."""
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    view = pg.GraphicsLayoutWidget()
    view.resize(*size)
    big = [p for p in panels if p["big"]]
    small = [p for p in panels if not p["big"]]
    cols = 2 if len(small) == 4 else max(1, min(3, len(small)))
    items = []
    row = 0
    for p in big:
        items.append((view.addPlot(row=row, col=0, colspan=cols), p))
        row += 1
    for i, p in enumerate(small):
        items.append((view.addPlot(row=row + i // cols, col=i % cols), p))
    drawn = []
    for plot, p in items:
        plot.disableAutoRange()
        plot.setYRange(*p["y_range"], padding=0)
        for t, v, pen in p["curves"]:
            drawn.append((plot, plot.plot(pen=pen), t, v))
    view.show()
    app.processEvents()
    period = 1.0 / fps
    frames: list[float] = []
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    k = 0
    while time.monotonic() < end:
        shift = k * period
        t0 = time.perf_counter()
        for plot, p in items:
            lo, hi = p["x_range"]
            plot.setXRange(lo + shift, hi + shift, padding=0)
        for _, curve, t, v in drawn:
            curve.setData(t + shift, v)
        view.scene().prepareForPaint()  # pyqtgraph's own call: else it paints twice
        app.processEvents()  # the paint
        frames.append((time.perf_counter() - t0) * 1000.0)
        k += 1
        next_at += period
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    view.close()
    view.deleteLater()
    app.processEvents()
    return frames
