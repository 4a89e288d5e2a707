"""Bounded accumulation of parsed samples between two drains.

Line-by-line decoders append to plain lists (cheap per point); column-wise shortcuts hand over
whole numpy arrays. Both become one float64 array per channel only in ``drain()``.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from device_drivers.telemetry.batch import TelemetryBatch

# Values whose magnitude exceeds this are rejected: beyond it float64 no longer holds integers
# exactly, and no counter or sensor of a microcontroller produces such numbers unless corrupted.
MAX_ABS_VALUE = 1e15
MAX_NAME = 64


class Channel:
    """One channel's pending points, oldest first.

    ``ts``/``vs`` are the open lists (``add_t``/``add_v`` their bound ``append``; read them
    afresh, the lists are replaced); ``parts`` holds older ``(t, v)`` pairs (lists or arrays).
    No ``__len__`` on purpose: a channel object must stay truthy; see ``size()``.
    """

    __slots__ = ("add_t", "add_v", "parts", "parts_size", "ts", "vs")

    def __init__(self) -> None:
        self.parts: list[tuple] = []
        self.parts_size = 0
        self._open()

    def _open(self) -> None:
        self.ts: list[float] = []
        self.vs: list[float] = []
        self.add_t = self.ts.append
        self.add_v = self.vs.append

    def size(self) -> int:
        return self.parts_size + len(self.vs)

    def put_arrays(self, t: np.ndarray, v: np.ndarray) -> None:
        """Append many points at once (two float64 arrays of equal length, not modified later)."""
        if self.vs:
            self.parts.append((self.ts, self.vs))
            self.parts_size += len(self.vs)
            self._open()
        self.parts.append((t, v))
        self.parts_size += len(v)

    def evict(self, k: int) -> None:
        """Forget the ``k`` oldest points."""
        parts = self.parts
        while k > 0 and parts:
            t, v = parts[0]
            n = len(v)
            if n <= k:
                del parts[0]
                self.parts_size -= n
                k -= n
            else:
                parts[0] = (t[k:], v[k:])
                self.parts_size -= k
                k = 0
        if k > 0:
            del self.ts[:k]
            del self.vs[:k]

    def take(self) -> tuple[np.ndarray, np.ndarray] | None:
        """All pending points as two new float64 arrays (None if there are none); then empty."""
        parts = self.parts
        if self.vs:
            parts.append((self.ts, self.vs))
        if not parts:
            return None
        if len(parts) == 1:
            t, v = parts[0]
            out = (np.array(t, dtype=np.float64), np.array(v, dtype=np.float64))
        else:
            out = (
                np.concatenate([np.asarray(t, dtype=np.float64) for t, _ in parts]),
                np.concatenate([np.asarray(v, dtype=np.float64) for _, v in parts]),
            )
        self.parts = []
        self.parts_size = 0
        if self.vs:
            self._open()
        return out


class Collector:
    """Where the format decoders put samples; owns every bound on memory.

    ``dropped``/``parsed`` count since the last drain. Points are capped at ``max_points`` over
    all channels (the oldest quarter of each channel goes when the cap is passed), channels at
    ``max_channels`` (points for further new names are dropped), console lines at ``max_lines``.
    """

    def __init__(self, max_points: int, max_channels: int, max_lines: int) -> None:
        self.max_points = max(16, max_points)
        self.max_channels = max(1, max_channels)
        self.channels: dict[str, Channel] = {}
        self.console: deque[str] = deque(maxlen=max(1, max_lines))
        self.lines_dropped = 0
        self.parsed = 0
        self.dropped = 0
        self.top_label: str | None = None

    def channel(self, name: str) -> Channel | None:
        """The channel called ``name``, created on first use; None if no more channels fit."""
        ch = self.channels.get(name)
        if ch is None and len(self.channels) < self.max_channels and 0 < len(name) <= MAX_NAME:
            ch = self.channels[name] = Channel()
        return ch

    def add(self, name: str, t: float, v: float) -> None:
        """Slow path for one point (validated value); fast paths inline the same steps."""
        ch = self.channels.get(name) or self.channel(name)
        if ch is None:
            self.dropped += 1
        else:
            ch.add_t(t)
            ch.add_v(v)

    def add_console(self, lines: list[str]) -> None:
        console = self.console
        room = console.maxlen - len(console)  # type: ignore[operator]
        if len(lines) > room:
            self.lines_dropped += len(lines) - room
        console.extend(lines)

    def enforce_bounds(self) -> None:
        """Evict the oldest points once more than ``max_points`` are pending (amortised O(1))."""
        total = self.pending_points()
        if total <= self.max_points:
            return
        keep_ratio = (self.max_points * 3 // 4) / total
        for ch in self.channels.values():
            n = ch.size()
            cut = n - math.floor(n * keep_ratio)
            if cut > 0:
                ch.evict(cut)
                self.dropped += cut

    def pending_points(self) -> int:
        return sum(ch.size() for ch in self.channels.values())

    def drain(self, fmt: str | None) -> TelemetryBatch:
        channels = {}
        for name, ch in self.channels.items():
            series = ch.take()
            if series is not None:
                channels[name] = series
        batch = TelemetryBatch(
            channels=channels,
            lines=list(self.console),
            top_label=self.top_label,
            parsed=self.parsed,
            dropped=self.dropped,
            format=fmt,
            lines_dropped=self.lines_dropped,
        )
        self.console.clear()
        self.parsed = self.dropped = self.lines_dropped = 0
        return batch


class DeviceClock:
    """Turns a device's millisecond counter into seconds that never go backwards.

    The first segment is exactly ``t_ms / 1000``. When the counter steps back (the device
    reset, or a 16/32-bit counter wrapped) the timeline continues right after the previous
    sample, one typical sample period later, so plots stay ordered; ``resets`` counts those.
    """

    def __init__(self) -> None:
        self.offset = 0.0
        self.last: float | None = None
        self.last_out = -math.inf
        self.step = 0.0
        self.resets = 0
        self.fresh = False  # a sample was stamped since the last observe()
        self.sync: list[tuple[float, float]] = []
        self.breaks: list[float] = []

    def seconds(self, t_ms: float) -> float:
        s = t_ms / 1000.0
        last = self.last
        if last is not None:
            if s >= last:
                self.step = s - last
            else:
                self.resets += 1
                self.offset += last - s + self.step
                self.breaks.append(s + self.offset)
        self.last = s
        out = s + self.offset
        if out < self.last_out:  # rounding after a reset must not step back
            out = self.last_out
        self.last_out = out
        self.fresh = True
        return out

    def observe(self, t_host: float) -> None:
        """A chunk received at host time ``t_host`` was decoded: pair its newest sample's
        device time with it (what the host mapping estimates the clock offset from)."""
        if self.fresh:
            self.fresh = False
            if len(self.sync) >= 4096:  # nobody drains: keep the newest
                del self.sync[:2048]
            self.sync.append((self.last_out, t_host))

    def take(self) -> tuple[list[tuple[float, float]], list[float]]:
        """The sync pairs and breaks since the previous take."""
        sync, breaks = self.sync, self.breaks
        self.sync, self.breaks = [], []
        return sync, breaks
