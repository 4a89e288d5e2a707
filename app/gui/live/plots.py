"""Plot panels: one ``PlotItem`` per quantity, one curve per channel, x axes linked."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt

from app.gui import theme
from app.gui.live.buffers import RingBuffer
from app.gui.live.channels import PanelSpec

pg.setConfigOptions(useOpenGL=False, exitCleanup=False)


class Curve:
    """A channel's ring buffer and the curve that draws it."""

    def __init__(self, name: str, label: str, color: str, item: pg.PlotDataItem,
                 ring: RingBuffer) -> None:
        self.name, self.label, self.color = name, label, color
        self.item = item
        self.ring = ring
        self.dirty = True


class Panel:
    """One plot of the dashboard (e.g. "Inference latency (ms)") and its curves."""

    def __init__(self, spec: PanelSpec, plot: pg.PlotItem, dark: bool) -> None:
        self.spec = spec
        self.plot = plot
        self.dark = dark
        self.curves: dict[str, Curve] = {}
        plot.setMenuEnabled(False)
        plot.showGrid(x=True, y=True, alpha=theme.grid_alpha(dark))
        plot.setTitle(spec.title, size="10pt", bold=True, justify="left")
        plot.setLabel("left", spec.unit or ("score" if spec.key == "scores" else "value"))
        plot.getAxis("left").setWidth(58)
        plot.hideButtons()
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        vb = plot.getViewBox()
        vb.setMouseMode(pg.ViewBox.PanMode)
        if spec.y_range is not None:
            lo, hi = spec.y_range
            plot.setYRange(lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo), padding=0)
            vb.setLimits(yMin=lo - 0.5 * (hi - lo), yMax=hi + 0.5 * (hi - lo))
        else:
            plot.enableAutoRange(axis="y")
            plot.setAutoVisible(y=True)
        self.legend = plot.addLegend(offset=(8, 4), labelTextSize="9pt",
                                     brush=pg.mkBrush(theme.plot_background(dark) + "D0"),
                                     verSpacing=-6, colCount=4)
        self.cursor = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen(theme.plot_foreground(dark), width=1,
                                                   style=Qt.PenStyle.DashLine))
        self.cursor.setVisible(False)
        self.cursor.setZValue(50)
        plot.addItem(self.cursor, ignoreBounds=True)

    def add_curve(self, name: str, label: str, color: str, ring: RingBuffer) -> Curve:
        width = 2 if self.spec.key == "scores" else 1.5
        item = self.plot.plot(name=label, pen=pg.mkPen(color, width=width))
        item.setClipToView(True)
        item.setDownsampling(auto=True, method="peak")
        item.setSkipFiniteCheck(True)
        curve = Curve(name, label, color, item, ring)
        self.curves[name] = curve
        self.legend.setVisible(len(self.curves) > 1)
        return curve

    def set_autoscale(self, on: bool) -> None:
        if self.spec.y_range is not None:
            return
        if on:
            self.plot.enableAutoRange(axis="y")
            self.plot.setAutoVisible(y=True)
        else:
            self.plot.disableAutoRange(axis="y")

    def redraw(self, t0: float) -> int:
        """Hand the visible part of each ring to its curve; returns points passed."""
        points = 0
        for curve in self.curves.values():
            if not curve.dirty:
                continue
            t, v = curve.ring.since(t0)
            curve.item.setData(t, v)
            curve.dirty = False
            points += len(t)
        return points

    def freeze(self) -> None:
        """Give the curves private copies (the rings keep moving while paused)."""
        for curve in self.curves.values():
            t, v = curve.ring.view()
            curve.item.setData(np.array(t), np.array(v))

    def clear(self) -> None:
        for curve in self.curves.values():
            curve.ring.clear()
            curve.item.setData([], [])
