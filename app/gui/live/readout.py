"""The dashboard's readouts: its status line and the cursor's values (no state of their own:
everything they read is passed in)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from app.state.live_channels import format_value
from app.state.live_feed import LiveFeed


def status_text(feed: LiveFeed, *, live: bool, paused: bool, frame_ms: Sequence[float],
                fps: float) -> str:
    """``8,000 samples/s · 120,000 total · frame 9.1 ms @ 40 fps`` and the like."""
    rate = f"{feed.sample_rate():,.0f} samples/s" if live else "NO LIVE DATA"
    parts = [rate, f"{feed.samples_total:,} total"]
    dropped = feed.dropped_total + feed.store.overflow_dropped
    if dropped:
        parts.append(f"{dropped:,} dropped")
    if frame_ms:
        parts.append(f"frame {np.median(list(frame_ms)[-100:]):.1f} ms @ {fps:.0f} fps")
    if paused:
        parts.append("PAUSED")
    if feed.recorder is not None:
        parts.append(f"recording {Path(feed.recorder.path).name}")
    return " · ".join(parts)


def cursor_readout(panels: Iterable[Any], x: float | None) -> str:
    """Put the cursor line at time ``x`` on every panel (hide it if None); the values there."""
    parts = []
    for panel in panels:
        panel.cursor.setVisible(x is not None)
        if x is None:
            continue
        panel.cursor.setPos(x)
        for curve in panel.curves.values():
            value = curve.ring.value_at(x)
            if value is not None:
                parts.append(f"{curve.label} {format_value(value, panel.spec.unit)}")
    return "" if x is None else f"t = {x:.3f} s   " + "   ".join(parts)


def time_at(panels: Iterable[Any], pos: Any) -> float | None:
    """The time under the mouse at scene position ``pos`` (None outside every plot)."""
    for panel in panels:
        if panel.plot.sceneBoundingRect().contains(pos):
            return float(panel.plot.getViewBox().mapSceneToView(pos).x())
    return None
