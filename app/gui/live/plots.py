"""Plot panels: one ``PlotItem`` per quantity, one curve per channel, x axes linked."""

from __future__ import annotations

import time
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPaintEvent, QPen
from PySide6.QtWidgets import QApplication, QMenu, QWidget

from app.gui import theme
from app.state.live_buffers import PeakCache, RingBuffer, decimate_peak
from app.state.live_channels import PanelSpec

pg.setConfigOptions(useOpenGL=False, exitCleanup=False)
theme.configure_plots(theme.is_dark())
THICK_MAX_POINTS = 2000


def _nice_step(raw: float) -> float:
    """1, 2 or 5 times a power of ten, at least ``raw``."""
    if not np.isfinite(raw) or raw <= 0:
        return 1.0
    exp = np.floor(np.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * 10**exp >= raw:
            return float(m * 10**exp)
    return float(10 ** (exp + 1))


class Trace(pg.PlotCurveItem):
    """A curve whose data bounds come with its data (pyqtgraph would re-scan both arrays,
    twice per frame, to find them)."""

    bounds: tuple | None = None

    def show(self, t: np.ndarray, v: np.ndarray, lo: float | None, hi: float | None,
             gap: bool) -> None:
        self.bounds = ((float(t[0]), float(t[-1])), (lo, hi)) if len(t) else None
        self.setData(t, v, connect="finite" if gap else "all")

    def dataBounds(self, ax, frac=1.0, orthoRange=None):  # type: ignore[no-untyped-def]
        if self.bounds is not None and frac == 1.0 and orthoRange is None:
            return self.bounds[ax]
        return super().dataBounds(ax, frac, orthoRange)


class Curve:
    """A channel's ring buffer and the curve that draws it."""

    def __init__(self, name: str, label: str, color: str, item: pg.PlotDataItem,
                 ring: RingBuffer) -> None:
        self.name, self.label, self.color = name, label, color
        self.item = item
        self.ring = ring
        self.dirty = True
        self.thick = False
        self.lo: float | None = None  # of the data on screen, for autoscale
        self.hi: float | None = None
        self.frozen: tuple[np.ndarray, np.ndarray] | None = None  # private copy while paused
        self.peaks = PeakCache()  # the decimated window, extended frame by frame


class Panel:
    """One plot of the dashboard (e.g. "Inference latency (ms)") and its curves."""

    def __init__(self, spec: PanelSpec, plot: pg.PlotItem, dark: bool) -> None:
        self.spec = spec
        self.plot = plot
        self.dark = dark
        self.curves: dict[str, Curve] = {}
        plot.setMenuEnabled(False)
        # an opaque light grid: alpha-blended grid lines are the costliest thing to render
        plot.showGrid(x=True, y=True, alpha=1.0)
        self._fg = theme.plot_foreground(dark)
        self._set_title()
        plot.setLabel("left", spec.unit or ("score" if spec.key == "scores" else "value"))
        for name in ("left", "bottom"):
            axis = plot.getAxis(name)
            axis.enableAutoSIPrefix(False)
            axis.setStyle(maxTickLevel=0)  # major grid lines only: half the drawing
        self._apply_colors()
        plot.getAxis("left").setWidth(58)
        plot.hideButtons()
        # clipping and peak decimation are done here per frame (one pass per curve);
        # pyqtgraph's own are switched on only while paused, for zooming into frozen data
        vb = plot.getViewBox()
        vb.setMouseMode(pg.ViewBox.PanMode)
        if spec.y_range is not None:
            lo, hi = spec.y_range
            plot.setYRange(lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo), padding=0)
            vb.setLimits(yMin=lo - 0.5 * (hi - lo), yMax=hi + 0.5 * (hi - lo))
        # y autoscale is done here too (pyqtgraph's re-scans every curve on every setData and
        # moves the axis each frame, so its ticks and grid are regenerated every frame)
        plot.disableAutoRange()
        self.autoscale = spec.y_range is None
        self._force_range = True
        self.cursor = pg.InfiniteLine(angle=90, movable=False,
                                      pen=pg.mkPen(theme.plot_foreground(dark), width=1,
                                                   style=Qt.PenStyle.DashLine))
        self.cursor.setVisible(False)
        self.cursor.setZValue(50)
        plot.addItem(self.cursor, ignoreBounds=True)

    def _apply_colors(self) -> None:
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.grid_color(self.dark)))
            axis.setTextPen(pg.mkPen(self._fg))
        if hasattr(self, "cursor"):
            self.cursor.setPen(pg.mkPen(self._fg, width=1, style=Qt.PenStyle.DashLine))

    def set_dark(self, dark: bool) -> None:
        """Follow a light/dark switch of the OS while running."""
        self.dark = dark
        self._fg = theme.plot_foreground(dark)
        self._apply_colors()
        self._set_title()
        label = self.plot.getAxis("left").labelText
        self.plot.setLabel("left", label, color=self._fg)
        self.plot.setLabel("bottom", self.plot.getAxis("bottom").labelText or None,
                           color=self._fg)

    def show_time_values(self, on: bool) -> None:
        """Tick labels on the time axis (only the bottom row needs them: text is costly)."""
        self.plot.getAxis("bottom").setStyle(showValues=on)

    def _pen(self, color: str, points: int) -> QPen:
        # Thick lines cost ~5x more in the raster engine: only while they are few.
        width = 2 if self.spec.key == "scores" and points <= THICK_MAX_POINTS else 1
        return pg.mkPen(color, width=width)

    def add_curve(self, name: str, label: str, color: str, ring: RingBuffer) -> Curve:
        # a bare PlotCurveItem: PlotDataItem's own clipping/downsampling layer would re-scan
        # the data every frame; ours (decimate_peak) already hands over one pair per column
        item = Trace(pen=self._pen(color, 0), skipFiniteCheck=True)
        self.plot.addItem(item)
        curve = Curve(name, label, color, item, ring)
        self.curves[name] = curve
        self._set_title()
        return curve

    def _set_title(self) -> None:
        """Title plus a colour key of the curves (no legend box over the data)."""
        html = (f"<span style='color:{self._fg}; font-weight:600'>"
                f"{escape(self.spec.title)}</span>")
        if len(self.curves) > 1 or self.spec.key in ("scores", "signals"):
            keys = "&nbsp;&nbsp;&nbsp;".join(
                f"<span style='color:{c.color}'>&#9644;</span>&nbsp;"
                f"<span style='color:{self._fg}'>{escape(c.label)}</span>"
                for c in self.curves.values())
            html += "&nbsp;&nbsp;&nbsp;&nbsp;&nbsp;" + keys
        self.plot.setTitle(html, size="10pt", justify="left")

    def set_autoscale(self, on: bool) -> None:
        if self.spec.y_range is not None:
            return
        self.autoscale = on
        self._force_range = on

    def _fit_y(self) -> None:
        """Keep the data in view with a stable range: move the axis only when the data
        leaves it or fills less than 40 % of it (hysteresis), to padded round numbers."""
        bounds = [(c.lo, c.hi) for c in self.curves.values() if c.lo is not None]
        if not bounds:
            return
        lo = min(b[0] for b in bounds)
        hi = max(b[1] for b in bounds)
        cur_lo, cur_hi = self.plot.getViewBox().viewRange()[1]
        span = hi - lo
        if not self._force_range and cur_lo <= lo and hi <= cur_hi and (
                span >= 0.4 * (cur_hi - cur_lo)):
            return
        self._force_range = False
        pad = 0.08 * span if span > 0 else max(abs(hi) * 0.05, 1e-3)
        step = _nice_step((span + 2 * pad) / 5)
        new_lo = np.floor((lo - pad) / step) * step
        new_hi = np.ceil((hi + pad) / step) * step
        self.plot.setYRange(float(new_lo), float(new_hi), padding=0)

    def redraw(self, t0: float) -> int:
        """Hand the visible part of each ring, peak-decimated to the plot's pixel width, to
        its curve; returns the points passed."""
        points = 0
        max_points = max(200, 2 * int(self.plot.getViewBox().width()))
        for curve in self.curves.values():
            if not curve.dirty:
                continue
            t, v = curve.peaks.window(curve.ring, t0, max_points)
            thick = self.spec.key == "scores" and len(t) <= THICK_MAX_POINTS
            if thick != curve.thick:
                curve.thick = thick
                curve.item.setPen(self._pen(curve.color, len(t)))
            lo, hi = (float(v.min()), float(v.max())) if len(v) else (None, None)
            gap = lo is not None and lo != lo  # NaN: a break in the line (reset, outage)
            if gap:
                lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
            curve.item.show(t, v, lo, hi, gap)
            curve.dirty = False
            if lo is not None and lo == lo:
                curve.lo, curve.hi = lo, hi
            points += len(t)
        if self.autoscale and points:
            self._fit_y()
        return points

    def freeze(self, frozen: bool = True) -> None:
        """Paused: the curves keep private full-resolution copies (the rings keep moving);
        :meth:`show_range` decimates the visible part of them as the user zooms."""
        for curve in self.curves.values():
            curve.frozen = tuple(np.array(a) for a in curve.ring.view()) if frozen else None

    def show_range(self, lo: float, hi: float) -> None:
        """Paused: draw the frozen data between ``lo`` and ``hi`` (min/max per column)."""
        max_points = max(200, 2 * int(self.plot.getViewBox().width()))
        for curve in self.curves.values():
            if curve.frozen is None:
                continue
            t, v = curve.frozen
            i = max(0, int(np.searchsorted(t, lo)) - 1)
            j = min(len(t), int(np.searchsorted(t, hi)) + 1)
            td, vd = decimate_peak(t[i:j], v[i:j], max_points)
            gap = len(vd) > 0 and bool(np.isnan(vd).any())
            curve.item.bounds = None  # paused: rarely, let pyqtgraph scan
            curve.item.setData(td, vd, connect="finite" if gap else "all")

    def clear(self) -> None:
        for curve in self.curves.values():
            curve.ring.clear()
            curve.peaks = PeakCache()
            curve.item.setData([], [])


class TimedView(pg.GraphicsLayoutWidget):
    """The plots' view; reports how long each render (paint) took."""

    painted = Signal(float)

    def paintEvent(self, event: QPaintEvent) -> None:
        started = time.perf_counter()
        super().paintEvent(event)
        self.painted.emit((time.perf_counter() - started) * 1000.0)


class TimeViewBox(pg.ViewBox):
    """The wheel zooms time only; with Ctrl (or Shift) held it zooms the values."""

    def wheelEvent(self, ev, axis=None):  # type: ignore[no-untyped-def]
        if axis is None:
            mods = ev.modifiers()
            value = mods & (Qt.KeyboardModifier.ControlModifier
                            | Qt.KeyboardModifier.ShiftModifier)
            axis = 1 if value else 0
        super().wheelEvent(ev, axis=axis)


def owned_plot_item(owner: QWidget) -> pg.PlotItem:
    """A PlotItem whose context menus belong to ``owner``.

    pyqtgraph creates its menus (ViewBox menu, plot controls) as parentless QMenus, which
    outlive the window as top-level widgets; giving them a parent frees them with it.
    """
    before = {id(w) for w in QApplication.topLevelWidgets()}
    plot = pg.PlotItem(viewBox=TimeViewBox())
    for w in QApplication.topLevelWidgets():
        if id(w) not in before and isinstance(w, QMenu) and w.parent() is None:
            w.setParent(owner, w.windowFlags())
    return plot


BIG_MIN_HEIGHT = 150  # px: the class scores stay readable on a 1024x600 screen


def arrange(ci: pg.GraphicsLayout, panels: dict[str, Panel], order: list[str],
            time_values_on_big_only: bool = False) -> None:
    """Lay the panels out: scores/signals full width on top, the rest in up to 3 columns;
    only plots with nothing below them carry time tick labels (text is costly to draw)."""
    for panel in panels.values():
        if panel.plot.scene() is not None:
            ci.removeItem(panel.plot)
    big = [k for k in order if k in ("scores", "signals")]
    small = [k for k in order if k not in big]
    cols = 2 if len(small) == 4 else max(1, min(3, len(small)))
    row = 0
    for key in big:
        ci.addItem(panels[key].plot, row=row, col=0, colspan=cols)
        ci.layout.setRowStretchFactor(row, 8)
        panels[key].plot.setMinimumHeight(BIG_MIN_HEIGHT)  # readable at 1024x600 too
        row += 1
    for i, key in enumerate(small):
        r, c = row + i // cols, i % cols
        ci.addItem(panels[key].plot, row=r, col=c)
        ci.layout.setRowStretchFactor(r, 3)
    bottom = {k for i, k in enumerate(small) if i + cols >= len(small)} or set(big[-1:])
    for key in order:
        plot = panels[key].plot
        plot.setLabel("bottom", "time (s)" if key in bottom else None)
        plot.showAxis("bottom", True)
        panels[key].show_time_values(key in big or (key in bottom
                                                    and not time_values_on_big_only))
