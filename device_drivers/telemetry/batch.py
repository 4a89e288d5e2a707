"""What a telemetry parser hands out: a batch of samples per channel, plus the raw console lines."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

Series = tuple[np.ndarray, np.ndarray]

_EMPTY = np.empty(0, dtype=np.float64)


@dataclass
class TelemetryBatch:
    """Everything parsed from one port since the previous ``drain()``.

    ``channels`` maps a channel name (``score/<label>``, ``latency_us``, ``ch0``, ...) to
    ``(t, values)``: two float64 arrays of equal length, ``t`` in seconds (device clock when the
    device sends ``"t"``, otherwise the host time given to ``feed``), in arrival order.
    ``lines`` are the decoded text lines (data and log alike) for a console, oldest first.
    ``top_label`` is the best label of the most recent scored sample seen on the port (it stays
    set across drains until a newer scored sample replaces it). ``parsed`` counts samples (one
    line, or one Edge Impulse block); ``dropped`` counts rejected lines and values plus samples
    evicted because nobody drained in time; ``lines_dropped`` counts console lines evicted.

    Clock: ``sync`` holds ``(device seconds, host time)`` of the newest device-stamped sample
    of each chunk fed (what ``telemetry.clock.HostClock`` estimates the device clock's offset
    from); ``breaks`` the times where the device clock restarted (a reset or a wrap), on the
    same timeline as ``channels`` (device seconds here, host time once mapped).
    """

    channels: dict[str, Series] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    top_label: str | None = None
    parsed: int = 0
    dropped: int = 0
    format: str | None = None
    lines_dropped: int = 0
    sync: list[tuple[float, float]] = field(default_factory=list)
    breaks: list[float] = field(default_factory=list)

    def __len__(self) -> int:
        """Number of (t, value) points over all channels."""
        return sum(len(t) for t, _ in self.channels.values())

    def series(self, name: str) -> Series:
        """The ``(t, values)`` of one channel; two empty arrays if the batch has none."""
        return self.channels.get(name, (_EMPTY, _EMPTY))

    merged = series  # the name the GUI's store used for it

    def rows(self) -> list[tuple[float, str, float]]:
        """All points as ``(t, channel, value)`` rows sorted by time (stable), e.g. for a CSV."""
        out = [
            (float(t), name, float(v))
            for name, (ts, vs) in self.channels.items()
            for t, v in zip(ts, vs, strict=True)
        ]
        out.sort(key=lambda row: row[0])
        return out

    @classmethod
    def merge(cls, batches: Iterable[TelemetryBatch]) -> TelemetryBatch:
        """Concatenate consecutive batches of one port (oldest first) into one batch."""
        parts: dict[str, list[Series]] = {}
        merged = cls()
        for batch in batches:
            for name, series in batch.channels.items():
                parts.setdefault(name, []).append(series)
            merged.lines.extend(batch.lines)
            merged.top_label = batch.top_label or merged.top_label
            merged.parsed += batch.parsed
            merged.dropped += batch.dropped
            merged.lines_dropped += batch.lines_dropped
            merged.format = batch.format
            merged.sync.extend(batch.sync)
            merged.breaks.extend(batch.breaks)
        for name, series_list in parts.items():
            merged.channels[name] = (
                np.concatenate([t for t, _ in series_list]),
                np.concatenate([v for _, v in series_list]),
            )
        return merged
