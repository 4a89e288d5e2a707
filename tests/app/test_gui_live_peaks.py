"""Item 3: the plot decimates incrementally (only new samples each frame) and gets the same
min/max-per-column result as decimating the whole window from scratch."""

from __future__ import annotations

import numpy as np

from app.state.live_buffers import PeakCache, RingBuffer, _bin_extremes


def _from_scratch(ring: RingBuffer, t0: float, max_points: int):
    t, v = ring.since(t0)
    n = len(t)
    k = int(np.ceil(2 * n / max_points))
    first = ring.total - n
    bins = (first + np.arange(n)) // k
    out_t, out_v = [], []
    for b in np.unique(bins):
        m = np.flatnonzero(bins == b)
        sel = _bin_extremes(v[m].reshape(1, -1), np.array([0])) + m[0]
        out_t.extend(t[sel])
        out_v.extend(v[sel])
    return np.array(out_t), np.array(out_v, dtype=np.float32)


def test_incremental_peaks_equal_a_full_decimation_frame_after_frame() -> None:
    rng = np.random.default_rng(0)
    ring, cache = RingBuffer(4096, 1 << 16), PeakCache()
    sent = 0
    checked = 0
    for _ in range(300):  # uneven chunks, like frames of a 1 kHz stream
        n = int(rng.integers(1, 60))
        v = rng.standard_normal(n).astype(np.float32)
        v[rng.random(n) < 0.01] = np.nan  # breaks in the line survive too
        ring.extend((sent + np.arange(n)) / 1000.0, v)
        sent += n
        t0 = max(0.0, sent / 1000.0 - 3.0)
        t, vv = cache.window(ring, t0, 400)
        if len(ring.since(t0)[0]) <= 400:
            continue
        ref_t, ref_v = _from_scratch(ring, t0, 400)
        np.testing.assert_array_equal(t, ref_t)
        np.testing.assert_array_equal(vv, ref_v)
        assert len(t) <= 404 and np.all(np.diff(t) > 0)
        checked += 1
    assert checked > 200
    # a spike anywhere in the window is kept
    ring.extend(np.array([sent / 1000.0]), np.array([1e6], dtype=np.float32))
    assert np.nanmax(cache.window(ring, sent / 1000.0 - 3.0, 400)[1]) == np.float32(1e6)
