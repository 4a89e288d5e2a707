"""The one store between a telemetry source and the plots (no Qt, numpy imported on use).

Data path: the session's I/O thread feeds its ``TelemetryParser`` (parsing happens there);
the dashboard's frame timer calls :meth:`ChannelStore.drain`, which takes what the attached
source parsed since the last frame (``source.telemetry()``: a live ``DeviceSession`` or a
replay) plus anything pushed, maps device clocks to host time (``HostClock``: the one clock
policy) and hands over one :class:`TelemetryBatch`. No thread sits in between.

Pushed data is bounded: if the GUI stalls, the oldest chunks are dropped and counted.
(numpy comes with the telemetry package on first use, so the window opens before it loads.)
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from device_drivers.telemetry import TelemetryBatch

log = logging.getLogger(__name__)

MAX_PENDING_SAMPLES = 2_000_000  # per store, across channels
MAX_PENDING_LINES = 5_000


def _telemetry() -> Any:
    import device_drivers.telemetry as telemetry

    return telemetry


class Source(Protocol):
    def telemetry(self) -> TelemetryBatch: ...


class ChannelStore:
    """Where the dashboard takes its data from: an attached source, or pushed batches."""

    def __init__(self, max_pending: int = MAX_PENDING_SAMPLES) -> None:
        self._lock = threading.Lock()
        self._max_pending = max_pending
        self._pending: deque[TelemetryBatch] = deque()
        self._pending_samples = 0
        self._evicted = 0
        self._top_label: str | None = None
        self.source: Source | None = None
        self._outage: str | None = None  # set by the link while its board is away
        self.clock: Any = None  # a HostClock once data arrives (one per source)
        self.overflow_dropped = 0
        self.total_samples = 0
        self.total_batches = 0
        self.last_push = 0.0

    @property
    def outage(self) -> str | None:
        """Why there is no live data: set by the link while its board is away, or told by
        the source itself (a fleet device offline or silent)."""
        source = self.source
        return self._outage or (getattr(source, "outage", None) if source is not None
                                else None)

    @outage.setter
    def outage(self, reason: str | None) -> None:
        self._outage = reason

    # ------------------------------------------------------------------ sources
    def attach(self, source: Source | None, break_at: float | None = None) -> None:
        """Take data from ``source`` from now on (a new connection: its own clock mapping).
        ``break_at``: host time of a gap to show (e.g. a reconnect)."""
        with self._lock:
            self.source = source
            self.outage = None
            self.clock = None
            if break_at is not None:
                self._pending.append(_telemetry().TelemetryBatch(breaks=[break_at]))

    def detach(self, source: Source | None = None) -> None:
        """Stop taking data from ``source`` (any source if None); what it parsed is kept."""
        with self._lock:
            if source is None:
                self.outage = None  # a deliberate disconnect is no outage
            elif self.source is not source:
                return
            old, self.source = self.source, None
        if old is not None:
            self._take(old)

    def _take(self, source: Source) -> None:
        try:
            batch = source.telemetry()
        except Exception as exc:  # a closed session must not kill the frame timer
            log.debug("telemetry source failed: %s", exc)
            return
        if batch.channels or batch.lines or batch.breaks or batch.parsed or batch.dropped:
            self.push(batch)

    # ------------------------------------------------------------------ push / drain
    def push(self, batch: TelemetryBatch, now: float | None = None) -> int:
        """Add a batch (host time already, or device time with sync pairs: mapped here)."""
        added = len(batch)
        with self._lock:
            if self.clock is None:
                self.clock = _telemetry().HostClock()
            batch = self.clock.map(batch)
            self._pending.append(batch)
            self._pending_samples += added
            i = self._evicted  # batches before it hold no samples any more
            while self._pending_samples > self._max_pending and i < len(self._pending) - 1:
                old = self._pending[i]  # its samples go; its lines and counts stay
                n = len(old)
                old.channels = {}
                self._pending_samples -= n
                self.overflow_dropped += n
                i += 1
            self._evicted = i
            self.total_batches += 1
            self.last_push = now if now is not None else time.time()
        return added

    def push_lines(self, lines: list[str], now: float | None = None) -> None:
        self.push(_telemetry().TelemetryBatch(lines=list(lines)), now)

    def drain(self) -> TelemetryBatch:
        """Everything new since the previous drain, as one batch in host time."""
        source = self.source
        if source is not None:
            self._take(source)
        with self._lock:
            pending = list(self._pending)
            self._pending.clear()
            self._pending_samples = 0
            self._evicted = 0
        batch_type: type[TelemetryBatch] = _telemetry().TelemetryBatch
        out = batch_type.merge(pending) if pending else batch_type()
        if len(out.lines) > MAX_PENDING_LINES:
            out.lines_dropped += len(out.lines) - MAX_PENDING_LINES
            out.lines = out.lines[-MAX_PENDING_LINES:]
        if out.top_label is None:
            out.top_label = self._top_label
        self._top_label = out.top_label
        self.total_samples += len(out)
        return out

    @property
    def pending_samples(self) -> int:
        with self._lock:
            return self._pending_samples
