"""The live dashboard widget: the top label large, KPIs, and a grid of linked plots.

Data path: the session's I/O thread parses into its ``TelemetryParser``; a ``QTimer``
(default 40 Hz) drains the :class:`ChannelStore` (which takes from the attached source and
maps device clocks to host time), appends to per-channel ring buffers, and calls
``setData`` once per changed curve with the visible window, min/max-decimated to the plot's
pixel width. Times are host seconds (float64) minus a fixed origin: the axis is wall time,
across reconnects too; gaps (a device reset, an outage) are drawn as breaks in the line.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.gui.live.buffers import ChannelStore, RingBuffer, make_room
from app.gui.live.channels import PANELS, channel_spec
from app.gui.live.header import LiveHeader, header_state
from app.gui.live.outage import OutageOverlay, OutageView
from app.gui.live.plots import Panel, TimedView, arrange, owned_plot_item
from app.gui.live.readout import DashboardReadout
from app.gui.live.recording import open_recorder

log = logging.getLogger(__name__)

INITIAL_CAPACITY = 2048
MAX_CAPACITY = 1 << 20


class LiveDashboard(DashboardReadout, OutageView, QWidget):
    """Plots whatever arrives in :attr:`store`. Public for tests and benchmarks."""

    lines_received = Signal(list)  # [(host time, line)]
    status_changed = Signal(str)
    recording_changed = Signal(bool)
    follow_changed = Signal(bool)  # False once the user zooms or pans; True after follow()

    def __init__(self, parent: QWidget | None = None, *, fps: float = 40.0,
                 window_s: float = 30.0, dark: bool | None = None,
                 store: ChannelStore | None = None) -> None:
        super().__init__(parent)
        self.store = store if store is not None else ChannelStore()
        self.dark = theme.is_dark() if dark is None else dark
        self.window_s = float(window_s)
        self.paused = False
        self.autoscale = True
        self.recorder = None
        self.panels: dict[str, Panel] = {}
        self._order: list[str] = []
        self._t0: float | None = None
        self._breaks: list[float] = []  # host times of gaps not yet drawn
        self._latest = 0.0
        self._label_index: dict[str, int] = {}
        self._top_label: str | None = None
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=256)
        self.frame_ms: deque[float] = deque(maxlen=2000)  # update (tick) + render (paint)
        self._tick_ms = 0.0
        self.base_interval_ms = max(1, round(1000 / fps))
        self.lean_axes = False  # time values on the big plot only (a kiosk: axis text costs)
        self.samples_total = 0
        self.parsed_total = 0
        self.dropped_total = 0
        self.last_data_at = 0.0
        self._syncing = False
        self.following = True

        self.header = LiveHeader(self)
        self.view = TimedView()
        self.view.painted.connect(self._painted)
        self.view.ci.setContentsMargins(6, 6, 10, 6)
        self.view.ci.layout.setHorizontalSpacing(14)
        self.view.ci.layout.setVerticalSpacing(10)
        self.empty = QLabel(self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setWordWrap(True)
        self.empty.setProperty("role", "muted")
        self.set_empty_text("No telemetry yet.\nConnect a board from the list on the left, "
                            "or start the demo board (Ctrl+D).")
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.view)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.header)
        layout.addWidget(self.stack, 1)
        self.outage = OutageOverlay(self)
        self.live = True

        self._mouse = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._on_mouse)
        self.cursor_text = ""
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(self.base_interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # ------------------------------------------------------------------ controls
    def set_empty_text(self, text: str) -> None:
        self.empty.setText(text)

    def set_window(self, seconds: float) -> None:
        self.window_s = float(seconds)
        for panel in self.panels.values():
            for curve in panel.curves.values():
                curve.dirty = True
        if self.paused:
            self._set_x_range()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            lo, hi = self._view_x()
            for panel in self.panels.values():
                panel.freeze()
                panel.show_range(lo, hi)
        else:
            for panel in self.panels.values():
                panel.freeze(False)
                for curve in panel.curves.values():
                    curve.dirty = True
        self._emit_status()

    def follow(self) -> None:
        """Back to the rolling window: newest data at the right, y fitted, not paused."""
        self.following = True
        self.set_paused(False)
        for panel in self.panels.values():
            panel.set_autoscale(self.autoscale)
            if panel.spec.y_range is not None:
                lo, hi = panel.spec.y_range
                panel.plot.setYRange(lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo), padding=0)
            for curve in panel.curves.values():
                curve.dirty = True
        self._set_x_range()
        self.follow_changed.emit(True)

    def _user_moved_view(self, *_: object) -> None:
        """The user zoomed or panned: stop following and freeze, so the view stays put."""
        if self._syncing:
            return
        if self.following:
            self.following = False
            self.set_paused(True)
            self.follow_changed.emit(False)

    def set_autoscale(self, on: bool) -> None:
        self.autoscale = on
        for panel in self.panels.values():
            panel.set_autoscale(on)

    def clear(self) -> None:
        """Forget all plotted data (keeps the panels)."""
        self.store.drain()
        for panel in self.panels.values():
            panel.clear()
        self._t0 = None
        self._breaks.clear()
        self._latest = 0.0
        self._top_label = None
        self.header.reset()
        self.samples_total = self.parsed_total = self.dropped_total = 0
        self._rate_window.clear()

    def reset(self) -> None:
        """Remove every panel (a new device may have other channels)."""
        self.clear()
        self.view.ci.clear()
        self.panels.clear()
        self._order.clear()
        self._label_index.clear()
        self.stack.setCurrentWidget(self.empty)

    def new_segment(self) -> None:
        """Another source follows: its first sample is not joined to the previous one."""
        self._breaks.append(time.time())

    def start_recording(self, path: str | Path) -> None:
        self.stop_recording()
        self.recorder = open_recorder(path)
        self.recording_changed.emit(True)
        self._emit_status()

    def stop_recording(self) -> int:
        rows = 0
        if self.recorder is not None:
            rows = self.recorder.rows
            self.recorder.close()
            self.recorder = None
            self.recording_changed.emit(False)
            self._emit_status()
        return rows

    def export_png(self, path: str | Path) -> bool:
        return self.grab().save(str(path), "PNG")

    def set_dark(self, dark: bool) -> None:
        self.dark = dark
        theme.configure_plots(dark)
        self.view.setBackground(theme.plot_background(dark))
        for panel in self.panels.values():
            panel.set_dark(dark)

    # ------------------------------------------------------------------ data path
    def tick(self) -> None:
        """Timer slot: drain the store, extend the rings, redraw what changed."""
        started = time.perf_counter()
        drained = self.store.drain()
        outage = self.store.outage
        if outage is not None and self.live:
            self.set_live(False, outage, reconnecting=True)
        elif not self.live and outage is None and self.store.source is not None:
            self.set_live(True)
        n_new = 0
        self._breaks.extend(drained.breaks)
        if drained.channels:
            n_new = self._ingest(drained)
        if drained.lines:
            stamp = time.time()
            self.lines_received.emit([(stamp, line) for line in drained.lines])
        if drained.top_label:
            self._top_label = drained.top_label
        self.parsed_total += drained.parsed
        self.dropped_total += drained.dropped
        now = time.monotonic()
        self._rate_window.append((now, n_new))
        if n_new:
            self.last_data_at = now
        if n_new and not self.paused:
            self._redraw()
            self._tick_ms = (time.perf_counter() - started) * 1000.0
        elif not self.live and not self.paused and self._t0 is not None and (
                now - self.last_data_at > 0.25):  # away: the axis keeps to wall time
            self.last_data_at = now
            self._latest = max(self._latest, time.time() - self._t0)
            self._set_x_range()
        if n_new or (self._rate_window and now - self._rate_window[0][0] > 1.0):
            self._emit_status_throttled(now)

    def _ingest(self, batch) -> int:
        """Append a batch (host time) to the rings; gaps become NaN points (line breaks)."""
        n_new = 0
        channels = batch.channels
        if self.recorder is not None:
            try:
                self.recorder.write(batch)
            except (OSError, ValueError) as exc:
                log.warning("recording stopped: %s", exc)
                self.stop_recording()
        if self._t0 is None:
            self._t0 = min(float(t[0]) for t, _ in channels.values() if len(t))
            self._breaks.clear()
        breaks = [b - self._t0 for b in self._breaks]
        self._breaks.clear()
        for name, (t, v) in channels.items():
            curve = self._curve(name)
            if curve is None or not len(t):
                continue
            spec = channel_spec(name)
            x = t - self._t0
            y = (v * spec.scale) if spec.scale != 1.0 else v
            ring = curve.ring
            last = ring.last()
            if last is not None:
                if x[0] < last[0]:  # never backwards (a remapped clock): clamp, no shift
                    x = np.maximum.accumulate(np.maximum(x, last[0]))
                gaps = [b for b in breaks if last[0] <= b <= x[0]]
                if gaps and np.isfinite(last[1]):
                    ring.extend(np.array([gaps[0]]), np.array([np.nan]))
            make_room(ring, x, self.window_s)
            ring.extend(x, y)
            curve.dirty = True
            n_new += len(x)
            self._latest = max(self._latest, float(x[-1]))
        self.samples_total += n_new
        return n_new

    def _curve(self, name: str):
        spec = channel_spec(name)
        panel = self.panels.get(spec.panel)
        if panel is None:
            panel = self._add_panel(spec.panel)
        curve = panel.curves.get(name)
        if curve is None:
            if sum(len(p.curves) for p in self.panels.values()) >= 64:
                return None  # a device that invents names forever must not grow the window
            idx = self._label_index.setdefault(spec.panel + name, len(panel.curves))
            color = (theme.label_color(spec.label, idx) if spec.panel == "scores"
                     else theme.PALETTE[idx % len(theme.PALETTE)])
            curve = panel.add_curve(name, spec.label, color,
                                    RingBuffer(INITIAL_CAPACITY, MAX_CAPACITY))
        return curve

    def _add_panel(self, key: str) -> Panel:
        spec = PANELS[key]
        plot = owned_plot_item(self)
        panel = Panel(spec, plot, self.dark)
        panel.set_autoscale(self.autoscale)
        plot.getViewBox().sigXRangeChanged.connect(self._on_x_changed)
        plot.getViewBox().sigRangeChangedManually.connect(self._user_moved_view)
        self.panels[key] = panel
        self._order = sorted(self.panels, key=lambda k: PANELS[k].order)
        self._relayout()
        self.stack.setCurrentWidget(self.view)
        return panel

    def _relayout(self) -> None:
        arrange(self.view.ci, self.panels, self._order, self.lean_axes)

    def _set_x_range(self) -> None:
        hi = max(self._latest, self.window_s)
        self._apply_x(hi - self.window_s, hi)

    def _apply_x(self, lo: float, hi: float, skip: object = None) -> None:
        # pyqtgraph's setXLink aligns views by screen position, which breaks a 2-column
        # grid; set every panel's range instead (and mirror user zoom while paused).
        self._syncing = True
        try:
            for panel in self.panels.values():
                vb = panel.plot.getViewBox()
                if vb is not skip:
                    vb.setXRange(lo, hi, padding=0)
        finally:
            self._syncing = False

    def _view_x(self) -> tuple[float, float]:
        for panel in self.panels.values():
            lo, hi = panel.plot.getViewBox().viewRange()[0]
            return lo, hi
        return 0.0, self.window_s

    def _on_x_changed(self, vb, rng) -> None:
        if self._syncing or not self.paused:
            return
        self._apply_x(rng[0], rng[1], skip=vb)
        for panel in self.panels.values():
            panel.show_range(rng[0], rng[1])

    def _redraw(self) -> None:
        lo = self._latest - self.window_s
        self._set_x_range()
        for panel in self.panels.values():
            panel.redraw(lo)
        # pyqtgraph moves the views' transforms only when a paint starts (prepareForPaint),
        # which marks every curve dirty again: a second full paint per frame. Move them now,
        # with the new data, so one paint draws the frame.
        self.view.scene().prepareForPaint()
        self._update_header()

    def _painted(self, paint_ms: float) -> None:
        if self._tick_ms:
            self.frame_ms.append(self._tick_ms + paint_ms)
            self._tick_ms = 0.0
            self._pace()

    def _pace(self) -> None:
        """Adaptive frame rate: a frame may use at most half of its interval (the GUI stays
        responsive under a data flood); speeds back up when frames get cheap again."""
        if len(self.frame_ms) < 10 or len(self.frame_ms) % 10:
            return
        cost = float(np.median(list(self.frame_ms)[-20:]))
        interval = self.timer.interval()
        want = int(min(100, max(self.base_interval_ms, 2.0 * cost)))
        if abs(want - interval) >= 5:
            self.timer.setInterval(want)

    @property
    def fps(self) -> float:
        return 1000.0 / self.timer.interval()

    def _update_header(self) -> None:
        self.header.show_state(*header_state(self.panels, self._top_label, self._label_index))

    def shutdown(self) -> None:
        self.timer.stop()
        self.stop_recording()

