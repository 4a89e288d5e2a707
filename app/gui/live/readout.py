"""The dashboard's readouts (a mixin of ``LiveDashboard``): status line, cursor, and
what tests and benchmarks ask it (channels, data held, points drawn, memory)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from app.gui.live.channels import format_value


class DashboardReadout:
    """Needs ``panels``, ``_order``, ``_rate_window``, ``frame_ms``, ``header``, counters."""

    # ------------------------------------------------------------------ header + status
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
        rate = f"{self.sample_rate():,.0f} samples/s" if self.live else "NO LIVE DATA"
        parts = [rate, f"{self.samples_total:,} total"]
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

