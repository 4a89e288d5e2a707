"""The live dashboard widget: the top label large, KPIs, and a grid of linked plots.

Data path: a reader thread pushes parsed batches into :class:`ChannelStore`; a ``QTimer``
(default 40 Hz) drains it, appends to per-channel ring buffers, and calls ``setData`` once
per changed curve with the visible window (pyqtgraph clips to the view and peak-downsamples
to the pixel width). Nothing is parsed or drawn per sample on the GUI thread.
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
from app.gui.live.buffers import ChannelStore, RingBuffer
from app.gui.live.channels import PANELS, channel_spec, format_value
from app.gui.live.header import LiveHeader, header_state
from app.gui.live.plots import Panel, TimedView, arrange, owned_plot_item
from app.gui.live.recording import open_recorder

log = logging.getLogger(__name__)

INITIAL_CAPACITY = 2048
MAX_CAPACITY = 1 << 20


class LiveDashboard(QWidget):
    """Plots whatever arrives in :attr:`store`. Public for tests and benchmarks."""

    lines_received = Signal(list)  # [(host time, line)]
    status_changed = Signal(str)
    recording_changed = Signal(bool)

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
        self._rebase = False
        self._last_x = 0.0
        self._latest = 0.0
        self._label_index: dict[str, int] = {}
        self._top_label: str | None = None
        self._rate_window: deque[tuple[float, int]] = deque(maxlen=256)
        self.frame_ms: deque[float] = deque(maxlen=2000)  # update (tick) + render (paint)
        self._tick_ms = 0.0
        self.base_interval_ms = max(1, round(1000 / fps))
        self.samples_total = 0
        self.parsed_total = 0
        self.dropped_total = 0
        self.last_data_at = 0.0
        self._syncing = False

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
            for panel in self.panels.values():
                panel.freeze()
        else:
            for panel in self.panels.values():
                panel.freeze(False)
                for curve in panel.curves.values():
                    curve.dirty = True
        self._emit_status()

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
        self._latest = self._last_x = 0.0
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
        """The next data continues the timeline (a reconnect may restart the device clock)."""
        self._rebase = True

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
        n_new = 0
        if drained.channels:
            n_new = self._ingest(drained)
        if drained.lines:
            self.lines_received.emit(drained.lines)
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
        if n_new or (self._rate_window and now - self._rate_window[0][0] > 1.0):
            self._emit_status_throttled(now)

    def _ingest(self, drained) -> int:
        n_new = 0
        merged = {name: drained.merged(name) for name in drained.channels}
        if self.recorder is not None:
            try:
                self.recorder.write(_Batch(merged))
            except (OSError, ValueError) as exc:
                log.warning("recording stopped: %s", exc)
                self.stop_recording()
        if self._t0 is None:
            self._t0 = min(float(t[0]) for t, _ in merged.values())
        elif self._rebase:
            first = min(float(t[0]) for t, _ in merged.values())
            self._t0 = first - (self._last_x + 0.05)
        self._rebase = False
        for name, (t, v) in merged.items():
            curve = self._curve(name)
            if curve is None:
                continue
            spec = channel_spec(name)
            x = t - self._t0
            y = (v * spec.scale) if spec.scale != 1.0 else v
            ring = curve.ring
            if len(x) and len(ring) and x[0] < ring.view()[0][-1]:  # clock went back
                x = x - x[0] + ring.view()[0][-1] + 1e-3
            self._make_room(ring, x)
            ring.extend(x, y)
            curve.dirty = True
            n_new += len(x)
            if len(x):
                self._latest = max(self._latest, float(x[-1]))
        self._last_x = self._latest
        self.samples_total += n_new
        return n_new

    def _make_room(self, ring: RingBuffer, x: np.ndarray) -> None:
        """Grow a ring so that it holds the whole window at the channel's rate (bounded)."""
        n = len(ring) + len(x)
        if n <= ring.capacity or ring.capacity >= ring.max_capacity or not len(x):
            return
        first = ring.view()[0][0] if len(ring) else x[0]
        span = float(x[-1] - first)
        want = n if span <= self.window_s * 1.1 else n * self.window_s * 1.1 / span
        if want > ring.capacity:
            ring.reserve(1 << int(np.ceil(np.log2(want))))

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
        self.panels[key] = panel
        self._order = sorted(self.panels, key=lambda k: PANELS[k].order)
        self._relayout()
        self.stack.setCurrentWidget(self.view)
        return panel

    def _relayout(self) -> None:
        arrange(self.view.ci, self.panels, self._order)

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

    def _on_x_changed(self, vb, rng) -> None:
        if self._syncing or not self.paused:
            return
        self._apply_x(rng[0], rng[1], skip=vb)

    def _redraw(self) -> None:
        lo = self._latest - self.window_s
        self._set_x_range()
        for panel in self.panels.values():
            panel.redraw(lo)
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

    # ------------------------------------------------------------------ header + status
    def _update_header(self) -> None:
        self.header.show_state(*header_state(self.panels, self._top_label, self._label_index))

    def _emit_status_throttled(self, now: float) -> None:
        if now - getattr(self, "_status_at", 0.0) >= 0.5:
            self._status_at = now
            self._emit_status()

    def sample_rate(self) -> float:
        if len(self._rate_window) < 2:
            return 0.0
        span = self._rate_window[-1][0] - self._rate_window[0][0]
        n = sum(c for _, c in list(self._rate_window)[1:])
        return n / span if span > 0 else 0.0

    def status_text(self) -> str:
        parts = [f"{self.sample_rate():,.0f} samples/s", f"{self.samples_total:,} total"]
        if self.dropped_total or self.store.overflow_dropped:
            parts.append(f"{self.dropped_total + self.store.overflow_dropped:,} dropped")
        if self.frame_ms:
            parts.append(f"frame {np.median(list(self.frame_ms)[-100:]):.1f} ms "
                         f"@ {self.fps:.0f} fps")
        if self.paused:
            parts.append("PAUSED")
        if self.recorder is not None:
            parts.append(f"recording {Path(self.recorder.path).name}")
        return " · ".join(parts)

    def _emit_status(self) -> None:
        self.status_changed.emit(self.status_text())

    # ------------------------------------------------------------------ cursor readout
    def _on_mouse(self, event) -> None:
        pos = event[0]
        for panel in self.panels.values():
            vb = panel.plot.getViewBox()
            if panel.plot.sceneBoundingRect().contains(pos):
                x = vb.mapSceneToView(pos).x()
                self.show_cursor(x)
                return
        self.show_cursor(None)

    def show_cursor(self, x: float | None) -> str:
        """Put the cursor line at time ``x`` on every plot; return (and show) the readout."""
        parts = []
        for key in self._order:
            panel = self.panels[key]
            panel.cursor.setVisible(x is not None)
            if x is None:
                continue
            panel.cursor.setPos(x)
            for curve in panel.curves.values():
                value = curve.ring.value_at(x)
                if value is not None:
                    parts.append(f"{curve.label} {format_value(value, panel.spec.unit)}")
        self.cursor_text = "" if x is None else f"t = {x:.3f} s   " + "   ".join(parts)
        self.header.show_cursor(self.cursor_text)
        return self.cursor_text

    # ------------------------------------------------------------------ introspection
    def channel_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Copy of what the dashboard holds for a channel (display units)."""
        for panel in self.panels.values():
            if name in panel.curves:
                t, v = panel.curves[name].ring.view()
                return t.copy(), v.copy()
        raise KeyError(name)

    def curve_points(self, name: str) -> int:
        """Points currently handed to the curve item (after clipping/downsampling)."""
        for panel in self.panels.values():
            if name in panel.curves:
                x, _ = panel.curves[name].item.getData()
                return 0 if x is None else len(x)
        raise KeyError(name)

    def channels(self) -> list[str]:
        return [n for p in self.panels.values() for n in p.curves]

    def memory_bytes(self) -> int:
        return sum(c.ring.nbytes for p in self.panels.values() for c in p.curves.values())

    def shutdown(self) -> None:
        self.timer.stop()
        self.stop_recording()


class _Batch:
    def __init__(self, channels: dict) -> None:
        self.channels = channels
