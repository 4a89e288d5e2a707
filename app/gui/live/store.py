"""The hand-off point between a reader thread and the GUI (no Qt, no numpy import at load).

The reader thread pushes whole telemetry batches (numpy arrays per channel, parsed in the
reader) under a lock, O(1) per batch; the GUI timer drains everything pending at once.
Pending data is bounded: if the GUI stalls, the oldest chunks are dropped and counted,
never the process's memory. (numpy is imported on first use, so the window can open
before it loads.)
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MAX_PENDING_SAMPLES = 2_000_000  # per store, across channels
MAX_PENDING_LINES = 5_000


@dataclass
class Drained:
    """Everything the GUI takes from the store in one timer tick."""

    channels: dict[str, list[tuple[Any, Any]]] = field(default_factory=dict)
    lines: list[tuple[float, str]] = field(default_factory=list)
    top_label: str | None = None
    parsed: int = 0
    dropped: int = 0
    samples: int = 0

    def merged(self, name: str) -> tuple[Any, Any]:
        chunks = self.channels[name]
        if len(chunks) == 1:
            return chunks[0]
        import numpy as np

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
        self._pending: deque[tuple[str, Any, Any]] = deque()
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
                    self._pending.append((name, t, v))  # float64 arrays from the parser
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
