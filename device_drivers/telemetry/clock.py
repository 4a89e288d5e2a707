"""One clock policy: every timestamp a consumer sees is host time (float64 seconds).

Host-stamped samples (plotter lines, Edge Impulse output, JSON without ``"t"``) already carry
the host time the session read them at. Device-stamped samples (the runtime's ``"t"`` in
milliseconds) come out of the parser in device seconds; :class:`HostClock` maps them to host
time with an estimated offset:

* each decoded chunk pairs its newest sample's device time with the host time it was read
  at (``TelemetryBatch.sync``); ``host - device`` is the offset plus the transfer delay, so
  the smallest value seen is the best estimate (never later than the data arrived);
* a device clock that runs slow makes that minimum stale: every ``window_s`` of host time
  the offset moves forward to the window's minimum, so mapped time follows the wall clock;
* a device reset (``TelemetryBatch.breaks``) starts a new estimate, and the break is
  reported in host time so plots can show a gap instead of joining the two segments.
"""

from __future__ import annotations

import math

import numpy as np

from device_drivers.telemetry.batch import TelemetryBatch


class HostClock:
    """Maps one device's clock to host time; one instance per connection."""

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = float(window_s)
        self.offset: float | None = None  # host = device + offset
        self.resets = 0
        self._win_min = math.inf
        self._win_started: float | None = None

    def _estimate(self, offset: float | None, pairs: list[tuple[float, float]]
                  ) -> float | None:
        for device_s, host_s in pairs:
            est = host_s - device_s
            if offset is None or est < offset:
                offset = est
            if self._win_started is None:
                self._win_started = host_s
            self._win_min = min(self._win_min, est)
            if host_s - self._win_started >= self.window_s:
                if self._win_min > offset:  # the device clock runs slow: follow the host
                    offset = self._win_min
                self._win_min, self._win_started = math.inf, host_s
        return offset

    def map(self, batch: TelemetryBatch) -> TelemetryBatch:
        """The batch with every timestamp in host time (modified in place and returned)."""
        if not batch.sync and self.offset is None:
            return batch  # host-stamped data (its breaks, if any, are host times already)
        sync = sorted(batch.sync)
        cuts = [-math.inf]
        offsets: list[float] = []
        offset = self.offset
        host_breaks: list[float] = []
        for b in [*sorted(batch.breaks), math.inf]:
            seg = [p for p in sync if cuts[-1] <= p[0] < b]
            offset = self._estimate(offset, seg)
            if offset is None:  # no pairing yet (cannot happen for parser output)
                offset = 0.0
            offsets.append(offset)
            if b != math.inf:
                self.resets += 1
                cuts.append(b)
                after = [p for p in sync if p[0] >= b]
                nxt = [p for p in after if p[0] < min([x for x in batch.breaks if x > b],
                                                     default=math.inf)]
                # the new segment's offset comes from its own pairs only
                offset = min((h - d for d, h in nxt), default=None)
                self._win_min, self._win_started = math.inf, None
                host_breaks.append(b + (offset if offset is not None else offsets[-1]))
        self.offset = offsets[-1]
        edges = np.asarray(cuts[1:], dtype=np.float64)
        table = np.asarray(offsets, dtype=np.float64)
        for name, (t, v) in batch.channels.items():
            t = np.asarray(t, dtype=np.float64)
            if len(table) == 1:
                mapped = t + table[0]
            else:
                mapped = t + table[np.searchsorted(edges, t, side="right")]
            batch.channels[name] = (mapped, v)
        batch.breaks = host_breaks
        batch.sync = []
        return batch
