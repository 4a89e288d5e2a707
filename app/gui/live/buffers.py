"""Data structures between the reader thread and the plots (no Qt here).

``ChannelStore`` is the hand-off point: the reader thread pushes whole telemetry batches
(numpy arrays per channel, parsed in the reader) under a lock, O(1) per batch; the GUI
timer drains everything pending at once. Pending data is bounded: if the GUI stalls, the
oldest chunks are dropped and counted, never the process's memory.

``RingBuffer`` is GUI-side and single-threaded: a preallocated sliding array (twice the
capacity; compacted when the end is reached) so the newest ``n`` samples are always one
contiguous numpy view, handed to ``setData`` without a copy.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_PENDING_SAMPLES = 2_000_000  # per store, across channels
MAX_PENDING_LINES = 5_000


class RingBuffer:
    """Timestamps (float64) and values (float32) of one channel, newest ``capacity`` kept."""

    def __init__(self, capacity: int = 4096, max_capacity: int = 1 << 20) -> None:
        self.capacity = max(16, int(capacity))
        self.max_capacity = max(self.capacity, int(max_capacity))
        self._t = np.empty(2 * self.capacity, dtype=np.float64)
        self._v = np.empty(2 * self.capacity, dtype=np.float32)
        self._start = 0
        self._end = 0
        self.total = 0

    def __len__(self) -> int:
        return self._end - self._start

    def reserve(self, capacity: int) -> None:
        """Grow to hold ``capacity`` samples (up to ``max_capacity``); never shrinks."""
        capacity = min(int(capacity), self.max_capacity)
        if capacity <= self.capacity:
            return
        n = len(self)
        t = np.empty(2 * capacity, dtype=np.float64)
        v = np.empty(2 * capacity, dtype=np.float32)
        t[:n] = self._t[self._start:self._end]
        v[:n] = self._v[self._start:self._end]
        self._t, self._v, self.capacity = t, v, capacity
        self._start, self._end = 0, n

    def extend(self, t: np.ndarray, v: np.ndarray) -> None:
        n = len(t)
        if n == 0:
            return
        self.total += n
        cap = self.capacity
        if n >= cap:
            self._t[:cap] = t[-cap:]
            self._v[:cap] = v[-cap:]
            self._start, self._end = 0, cap
            return
        if self._end + n > 2 * cap:  # compact: keep the newest cap - n, then append
            keep = min(len(self), cap - n)
            self._t[:keep] = self._t[self._end - keep:self._end]
            self._v[:keep] = self._v[self._end - keep:self._end]
            self._start, self._end = 0, keep
        self._t[self._end:self._end + n] = t
        self._v[self._end:self._end + n] = v
        self._end += n
        if self._end - self._start > cap:
            self._start = self._end - cap

    def view(self) -> tuple[np.ndarray, np.ndarray]:
        """All held samples, oldest first (views, valid until the next ``extend``)."""
        return self._t[self._start:self._end], self._v[self._start:self._end]

    def since(self, t0: float) -> tuple[np.ndarray, np.ndarray]:
        """Samples with timestamp >= ``t0`` (views), plus one before it so lines reach the edge."""
        t, v = self.view()
        i = max(0, int(np.searchsorted(t, t0, side="left")) - 1)
        return t[i:], v[i:]

    def last(self) -> tuple[float, float] | None:
        if self._end == self._start:
            return None
        return float(self._t[self._end - 1]), float(self._v[self._end - 1])

    def value_at(self, t0: float) -> float | None:
        """The sample nearest in time to ``t0``."""
        t, v = self.view()
        if len(t) == 0:
            return None
        i = int(np.searchsorted(t, t0))
        if i >= len(t):
            i = len(t) - 1
        elif i > 0 and (t0 - t[i - 1]) < (t[i] - t0):
            i -= 1
        return float(v[i])

    def clear(self) -> None:
        self._start = self._end = 0

    @property
    def nbytes(self) -> int:
        return self._t.nbytes + self._v.nbytes


@dataclass
class Drained:
    """Everything the GUI takes from the store in one timer tick."""

    channels: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    lines: list[tuple[float, str]] = field(default_factory=list)
    top_label: str | None = None
    parsed: int = 0
    dropped: int = 0
    samples: int = 0

    def merged(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        chunks = self.channels[name]
        if len(chunks) == 1:
            return chunks[0]
        return (np.concatenate([c[0] for c in chunks]), np.concatenate([c[1] for c in chunks]))


class ChannelStore:
    """Thread-safe hand-off of telemetry batches from a reader thread to the GUI."""

    def __init__(self, max_pending: int = MAX_PENDING_SAMPLES) -> None:
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._reset()
        self.overflow_dropped = 0
        self.total_samples = 0
        self.total_batches = 0
        self.last_push = 0.0

    def _reset(self) -> None:
        self._pending: deque[tuple[str, np.ndarray, np.ndarray]] = deque()
        self._pending_samples = 0
        self._lines: deque[tuple[float, str]] = deque(maxlen=MAX_PENDING_LINES)
        self._top_label: str | None = None
        self._parsed = 0
        self._dropped = 0

    def push(self, batch: Any, now: float | None = None) -> int:
        """Add a ``TelemetryBatch``-like object; returns the number of samples added."""
        added = 0
        with self._lock:
            for name, (t, v) in batch.channels.items():
                n = len(t)
                if n:
                    self._pending.append((name, np.asarray(t, np.float64),
                                          np.asarray(v, np.float64)))
                    added += n
            self._pending_samples += added
            while self._pending_samples > self._max_pending and len(self._pending) > 1:
                _, t_old, _ = self._pending.popleft()
                self._pending_samples -= len(t_old)
                self.overflow_dropped += len(t_old)
            if batch.lines:
                stamp = now if now is not None else 0.0
                self._lines.extend((stamp, line) for line in batch.lines)
            if getattr(batch, "top_label", None):
                self._top_label = batch.top_label
            self._parsed += int(getattr(batch, "parsed", 0) or 0)
            self._dropped += int(getattr(batch, "dropped", 0) or 0)
            self.total_samples += added
            self.total_batches += 1
            if now is not None:
                self.last_push = now
        return added

    def push_lines(self, lines: list[str], now: float) -> None:
        with self._lock:
            self._lines.extend((now, line) for line in lines)

    def drain(self) -> Drained:
        with self._lock:
            pending, lines = self._pending, self._lines
            out = Drained(lines=list(lines), top_label=self._top_label, parsed=self._parsed,
                          dropped=self._dropped, samples=self._pending_samples)
            self._reset()
        for name, t, v in pending:
            out.channels.setdefault(name, []).append((t, v))
        return out

    @property
    def pending_samples(self) -> int:
        with self._lock:
            return self._pending_samples


def decimate_peak(t: np.ndarray, v: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Min/max decimation to at most ``max_points`` (+2) points, every peak kept.

    Bins of ``k`` consecutive samples become two points: the bin's minimum and maximum, in
    the order they occur, at the times they occur, so spikes survive any zoom level.
    """
    n = len(v)
    if n <= max_points or max_points < 4:
        return t, v
    k = int(np.ceil(2 * n / max_points))
    m = n // k
    idx = [_bin_extremes(v[: m * k].reshape(m, k), np.arange(m) * k)]
    if m * k < n:  # the last, partial bin
        idx.append(_bin_extremes(v[m * k:].reshape(1, -1), np.array([m * k])))
    sel = np.concatenate(idx)
    return t[sel], v[sel]


def _bin_extremes(bins: np.ndarray, base: np.ndarray) -> np.ndarray:
    k = bins.shape[1]
    lo = bins.argmin(axis=1)
    hi = bins.argmax(axis=1)
    if k > 1:  # a flat bin: min and max are one sample; take its neighbour as the second
        same = lo == hi
        hi[same] = np.where(lo[same] < k - 1, lo[same] + 1, lo[same] - 1)
    first = np.minimum(lo, hi)
    second = np.maximum(lo, hi)
    out = np.empty(2 * len(base), dtype=np.intp)
    out[0::2] = base + first
    out[1::2] = base + second
    if k == 1:
        out = out[0::2]
    return out
