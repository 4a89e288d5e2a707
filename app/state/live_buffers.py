"""The plots' data structures (no Qt here): ring buffers and min/max decimation.

``RingBuffer`` is GUI-side and single-threaded: a preallocated sliding array (twice the
capacity; compacted when the end is reached) so the newest ``n`` samples are always one
contiguous numpy view, handed to ``setData`` without a copy.
"""

from __future__ import annotations

import numpy as np


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


def make_room(ring: RingBuffer, x: np.ndarray, window_s: float) -> None:
    """Grow a ring so that it holds the whole window at the channel's rate (bounded)."""
    n = len(ring) + len(x)
    if n <= ring.capacity or ring.capacity >= ring.max_capacity or not len(x):
        return
    first = ring.view()[0][0] if len(ring) else x[0]
    span = float(x[-1] - first)
    want = n if span <= window_s * 1.1 else n * window_s * 1.1 / span
    if want > ring.capacity:
        ring.reserve(1 << int(np.ceil(np.log2(want))))


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


class PeakCache:
    """Min/max decimation of a ring's sliding window, computed only for what is new.

    Bins of ``k`` samples are aligned to the ring's absolute sample count, so a bin that was
    complete last frame is the same bin this frame: its two points are kept, and each frame
    decimates only the samples that arrived since (plus the partial bins at both ends).
    ``k`` follows the window's sample count and the plot's width (one min/max pair per
    pixel column); when it changes, everything is recomputed once.
    """

    def __init__(self) -> None:
        self.k = 0
        self.done = 0  # absolute index up to which complete bins are cached
        self._abs = np.empty(0, dtype=np.int64)  # absolute bin start of each cached point
        self._t = np.empty(0, dtype=np.float64)
        self._v = np.empty(0, dtype=np.float32)

    def window(self, ring: RingBuffer, t0: float, max_points: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """The samples of ``ring`` from ``t0`` on, decimated to about ``max_points``."""
        t, v = ring.since(t0)
        n = len(t)
        if n <= max_points or max_points < 4:
            return t, v
        k = int(np.ceil(2 * n / max_points))
        first = ring.total - n  # absolute index of t[0]
        if k != self.k or self.done < first:
            self.k, self.done = k, first + (-first) % k
            self._abs = self._abs[:0]
            self._t, self._v = self._t[:0], self._v[:0]
        lead_end = first + (-first) % k  # first bin boundary in the window
        end_full = ring.total - ring.total % k
        if end_full > self.done:  # new complete bins
            a, b = self.done - first, end_full - first
            bins = v[a:b].reshape(-1, k)
            sel = _bin_extremes(bins, np.arange(len(bins)) * k) + a
            self._abs = np.concatenate([self._abs, first + a + (sel - a) // k * k])
            self._t = np.concatenate([self._t, t[sel]])
            self._v = np.concatenate([self._v, v[sel]])
            self.done = end_full
        keep = int(np.searchsorted(self._abs, lead_end))
        if keep:
            self._abs, self._t, self._v = self._abs[keep:], self._t[keep:], self._v[keep:]
        parts_t, parts_v = [], []
        if lead_end > first:  # the partial bin at the window's start
            i = min(n, lead_end - first)
            sel = _bin_extremes(v[:i].reshape(1, -1), np.array([0]))
            parts_t.append(t[sel])
            parts_v.append(v[sel])
        parts_t.append(self._t)
        parts_v.append(self._v)
        if ring.total > end_full and end_full - first < n:  # the partial bin at the end
            i = max(0, end_full - first)
            sel = _bin_extremes(v[i:].reshape(1, -1), np.array([0])) + i
            parts_t.append(t[sel])
            parts_v.append(v[sel])
        return np.concatenate(parts_t), np.concatenate(parts_v)


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
