"""The live dashboard widget: the top label large, KPIs, and a grid of linked plots.

Data path: the session's I/O thread parses into its ``TelemetryParser``; a ``QTimer``
(default 40 Hz) has the Qt-free :class:`~app.state.live_feed.LiveFeed` drain its
``ChannelStore`` (which takes from the attached source and maps device clocks to host time)
into per-channel ring buffers (and the CSV recorder's queue), then calls ``setData`` once
per changed curve with the visible window, min/max-decimated to the plot's pixel width.
Times are host seconds (float64) minus a fixed origin: the axis is wall time, across
reconnects too; gaps (a device reset, an outage) are drawn as breaks in the line.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

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
from app.gui.live.header import LiveHeader, header_state
from app.gui.live.outage import OutageOverlay
from app.gui.live.plots import Panel, TimedView, arrange, owned_plot_item
from app.gui.live.readout import cursor_readout, status_text, time_at
from app.state.live_channels import PANELS
from app.state.live_feed import FeedChannel, LiveFeed
from app.state.live_store import ChannelStore

log = logging.getLogger(__name__)


def _from_feed(name: str) -> Any:
    return property(lambda self: getattr(self.feed, name), doc=f"``feed.{name}``")


class LiveDashboard(QWidget):
    """Plots whatever arrives in :attr:`store`. Public for tests and benchmarks."""

    lines_received = Signal(list)  # [(host time, line)]
    status_changed = Signal(str)
    recording_changed = Signal(bool)
    follow_changed = Signal(bool)  # False once the user zooms or pans; True after follow()

    def __init__(self, parent: QWidget | None = None, *, fps: float = 40.0,
                 window_s: float = 30.0, dark: bool | None = None,
                 store: ChannelStore | None = None) -> None:
        super().__init__(parent)
        self.feed = LiveFeed(store, window_s)  # rings, counters, recording: no Qt
        self.dark = theme.is_dark() if dark is None else dark
        self.paused = False
        self.autoscale = True
        self.panels: dict[str, Panel] = {}
        self._order: list[str] = []
        self._label_index: dict[str, int] = {}
        self.frame_ms: deque[float] = deque(maxlen=2000)  # update (tick) + render (paint)
        self._tick_ms = 0.0
        self._status_at = 0.0
        self.base_interval_ms = max(1, round(1000 / fps))
        self.lean_axes = False  # time values on the big plot only (a kiosk: axis text costs)
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
        self.outage = OutageOverlay(
            self, lambda: self.stack.geometry().united(self.header.geometry()))
        self.live = True

        self._mouse = pg.SignalProxy(self.view.scene().sigMouseMoved, rateLimit=30,
                                     slot=self._on_mouse)
        self.cursor_text = ""
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(self.base_interval_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()

    # the feed's state, read-only here (tests, benchmarks and the page read these)
    store = _from_feed("store")
    window_s = _from_feed("window_s")
    recorder = _from_feed("recorder")
    samples_total = _from_feed("samples_total")
    dropped_total = _from_feed("dropped_total")
    last_data_at = _from_feed("last_data_at")

    # ------------------------------------------------------------------ controls
    def set_empty_text(self, text: str) -> None:
        self.empty.setText(text)

    def set_window(self, seconds: float) -> None:
        self.feed.window_s = float(seconds)
        self._mark_dirty()
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
            self._mark_dirty()
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
        self._mark_dirty()
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
        self.feed.clear()
        for panel in self.panels.values():
            panel.clear()
        self.header.reset()

    def reset(self) -> None:
        """Remove every panel (a new device may have other channels)."""
        self.clear()
        self.feed.reset()
        self.view.ci.clear()
        self.panels.clear()
        self._order.clear()
        self._label_index.clear()
        self.stack.setCurrentWidget(self.empty)

    def new_segment(self) -> None:
        """Another source follows: its first sample is not joined to the previous one."""
        self.feed.add_break()

    def start_recording(self, path: str | Path) -> None:
        """Record to a CSV from now on (written on the recorder's own thread)."""
        self.feed.start_recording(path)
        self.recording_changed.emit(True)
        self._emit_status()

    def stop_recording(self) -> int:
        """Write what is queued and close; returns the rows written."""
        if self.feed.recorder is None:
            return 0
        rows = self.feed.stop_recording()
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
        """Timer slot: the feed drains its store into the rings; redraw what changed."""
        started = time.perf_counter()
        feed = self.feed
        batch = feed.drain()
        outage = self.store.outage
        if outage is not None and self.live:
            self.set_live(False, outage, reconnecting=True)
        elif not self.live and outage is None and self.store.source is not None:
            self.set_live(True)
        now = time.monotonic()
        update = feed.ingest(batch, now)
        for channel in update.added:
            self._add_curve(channel)
        self._mark_dirty(update.changed)
        if update.recording_error is not None:
            self.recording_changed.emit(False)
        if update.lines:
            stamp = time.time()
            self.lines_received.emit([(stamp, line) for line in update.lines])
        n_new = update.new_samples
        if n_new and not self.paused:
            self._redraw()
            self._tick_ms = (time.perf_counter() - started) * 1000.0
        elif not self.live and not self.paused and feed.t0 is not None and (
                now - feed.last_data_at > 0.25):  # away: the axis keeps to wall time
            feed.last_data_at = now
            feed.latest = max(feed.latest, time.time() - feed.t0)
            self._set_x_range()
        if n_new or feed.rate_span(now) > 1.0:
            self._emit_status_throttled(now)

    def _add_curve(self, channel: FeedChannel) -> None:
        spec = channel.spec
        panel = self.panels.get(spec.panel)
        if panel is None:
            panel = self._add_panel(spec.panel)
        idx = self._label_index.setdefault(spec.panel + channel.name, len(panel.curves))
        color = (theme.label_color(spec.label, idx) if spec.panel == "scores"
                 else theme.PALETTE[idx % len(theme.PALETTE)])
        panel.add_curve(channel.name, spec.label, color, channel.ring)

    @property
    def _curves(self) -> dict[str, Any]:
        return {n: c for p in self.panels.values() for n, c in p.curves.items()}

    def _mark_dirty(self, names: list[str] | None = None) -> None:
        wanted = set(names or ())
        for name, curve in self._curves.items():
            curve.dirty = curve.dirty or names is None or name in wanted

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
        hi = max(self.feed.latest, self.window_s)
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
        lo = self.feed.latest - self.window_s
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
        self.header.show_state(*header_state(self.panels, self.feed.top_label,
                                             self._label_index))

    # ------------------------------------------------------------------ outage
    def set_live(self, live: bool, reason: str = "", reconnecting: bool = False) -> None:
        """Board present (True) or away: away greys the dashboard out, says what happened,
        and marks the header's values as last seen (they never look live)."""
        self.live = live
        if live:
            self.outage.clear()
        else:
            self.feed.add_break()
            self.outage.show_outage(reason, reconnecting)
        self.header.set_stale(not live, self.outage.since)
        self._emit_status()

    # ------------------------------------------------------------------ readouts
    def _emit_status_throttled(self, now: float) -> None:
        if now - self._status_at >= 0.5:
            self._status_at = now
            self._emit_status()

    def status_text(self) -> str:
        return status_text(self.feed, live=self.live, paused=self.paused,
                           frame_ms=self.frame_ms, fps=self.fps)

    def _emit_status(self) -> None:
        self.status_changed.emit(self.status_text())

    def _on_mouse(self, event: Any) -> None:
        self.show_cursor(time_at(self.panels.values(), event[0]))

    def show_cursor(self, x: float | None) -> str:
        """Put the cursor line at time ``x`` on every plot; return (and show) the readout."""
        self.cursor_text = cursor_readout((self.panels[k] for k in self._order), x)
        self.header.show_cursor(self.cursor_text)
        return self.cursor_text

    def channel_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copy of what the dashboard holds for a channel (display units)."""
        return self.feed.channel_data(name)

    def curve_points(self, name: str) -> int:
        """Points currently handed to the curve item (after clipping/downsampling)."""
        x, _ = self._curves[name].item.getData()
        return 0 if x is None else len(x)

    def channels(self) -> list[str]:
        return [n for p in self.panels.values() for n in p.curves]

    def memory_bytes(self) -> int:
        return self.feed.memory_bytes()

    def shutdown(self) -> None:
        self.timer.stop()
        self.stop_recording()

