"""The live feed (no Qt): what the Live page plots, from any source, in host time.

Every source hands :class:`~device_drivers.telemetry.TelemetryBatch` objects (the one batch
type) to a :class:`~app.state.live_store.ChannelStore`: a serial ``DeviceSession`` and a
recording's ``ReplaySource`` are pulled (``source.telemetry()``), a fleet device over MQTT
pushes; the store maps device clocks to host time. Each frame the view calls
:meth:`LiveFeed.drain` then :meth:`LiveFeed.ingest`: the batch is queued to the CSV
recorder (which writes on its own thread), each channel is appended to its ring buffer
(display units; seconds since the feed's origin; gaps become NaN points, i.e. line breaks),
and the counters move. The view (``app.gui.live.dashboard``) draws what :class:`FeedUpdate`
says changed.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.state.live_buffers import RingBuffer, make_room
from app.state.live_channels import ChannelSpec, channel_spec
from app.state.live_store import ChannelStore

log = logging.getLogger(__name__)

INITIAL_CAPACITY = 2048
MAX_CAPACITY = 1 << 20
MAX_CHANNELS = 64  # a device that invents names forever must not grow the window


@dataclass
class FeedChannel:
    name: str
    spec: ChannelSpec
    ring: RingBuffer


@dataclass
class FeedUpdate:
    """What one :meth:`LiveFeed.ingest` changed."""

    new_samples: int = 0
    changed: list[str] = field(default_factory=list)  # channels with new data
    added: list[FeedChannel] = field(default_factory=list)  # channels seen for the first time
    lines: list[str] = field(default_factory=list)  # console lines
    recording_error: str | None = None  # the recorder failed and was stopped


class LiveFeed:
    """Rings, counters and recording of the live view; one per dashboard."""

    def __init__(self, store: ChannelStore | None = None, window_s: float = 30.0,
                 max_channels: int = MAX_CHANNELS) -> None:
        self.store = store if store is not None else ChannelStore()
        self.window_s = float(window_s)
        self.max_channels = max_channels
        self.channels: dict[str, FeedChannel] = {}
        self.t0: float | None = None  # host time of the axis' zero
        self.latest = 0.0  # newest sample, seconds since t0
        self.breaks: list[float] = []  # host times of gaps not yet drawn
        self.top_label: str | None = None
        self.samples_total = 0
        self.parsed_total = 0
        self.dropped_total = 0
        self.last_data_at = 0.0  # monotonic time of the last new sample
        self._rate: deque[tuple[float, int]] = deque(maxlen=256)
        self.recorder: Any = None  # a device_drivers.recording.RecordingWriter

    # ------------------------------------------------------------------ data path
    def drain(self) -> Any:
        """Everything the store holds since the previous frame (one batch, host time)."""
        return self.store.drain()

    def ingest(self, batch: Any, now: float | None = None) -> FeedUpdate:
        """Record ``batch``, append it to the rings, count; say what changed."""
        now = time.monotonic() if now is None else now
        update = FeedUpdate(lines=list(batch.lines))
        self.breaks.extend(batch.breaks)
        if batch.channels:
            update.recording_error = self._record(batch)
            self._append(batch.channels, update)
        if batch.top_label:
            self.top_label = batch.top_label
        self.parsed_total += batch.parsed
        self.dropped_total += batch.dropped
        self._rate.append((now, update.new_samples))
        if update.new_samples:
            self.last_data_at = now
        return update

    def _record(self, batch: Any) -> str | None:
        if self.recorder is None:
            return None
        try:
            self.recorder.write(batch)
        except (OSError, ValueError) as exc:
            log.warning("recording stopped: %s", exc)
            self.stop_recording()
            return str(exc)
        return None

    def _append(self, channels: dict[str, tuple[np.ndarray, np.ndarray]],
                update: FeedUpdate) -> None:
        if self.t0 is None:
            self.t0 = min(float(t[0]) for t, _ in channels.values() if len(t))
            self.breaks.clear()
        breaks = [b - self.t0 for b in self.breaks]
        self.breaks.clear()
        for name, (t, v) in channels.items():
            channel = self._channel(name, update)
            if channel is None or not len(t):
                continue
            x = t - self.t0
            scale = channel.spec.scale
            y = (v * scale) if scale != 1.0 else v
            ring = channel.ring
            last = ring.last()
            if last is not None:
                if x[0] < last[0]:  # never backwards (a remapped clock): clamp, no shift
                    x = np.maximum.accumulate(np.maximum(x, last[0]))
                gaps = [b for b in breaks if last[0] <= b <= x[0]]
                if gaps and np.isfinite(last[1]):
                    ring.extend(np.array([gaps[0]]), np.array([np.nan]))
            make_room(ring, x, self.window_s)
            ring.extend(x, y)
            update.changed.append(name)
            update.new_samples += len(x)
            self.latest = max(self.latest, float(x[-1]))
        self.samples_total += update.new_samples

    def _channel(self, name: str, update: FeedUpdate) -> FeedChannel | None:
        channel = self.channels.get(name)
        if channel is None:
            if len(self.channels) >= self.max_channels:
                return None
            channel = FeedChannel(name, channel_spec(name),
                                  RingBuffer(INITIAL_CAPACITY, MAX_CAPACITY))
            self.channels[name] = channel
            update.added.append(channel)
        return channel

    def add_break(self, at: float | None = None) -> None:
        """The next sample is not joined to the previous one (a new source, an outage)."""
        self.breaks.append(time.time() if at is None else at)

    # ------------------------------------------------------------------ readouts
    def sample_rate(self) -> float:
        """Samples per second over the recent frames."""
        if len(self._rate) < 2:
            return 0.0
        span = self._rate[-1][0] - self._rate[0][0]
        n = sum(c for _, c in list(self._rate)[1:])
        return n / span if span > 0 else 0.0

    def rate_span(self, now: float) -> float:
        """Seconds covered by the rate window (0 if empty)."""
        return now - self._rate[0][0] if self._rate else 0.0

    def channel_data(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A copy of what is held for a channel (display units)."""
        t, v = self.channels[name].ring.view()
        return t.copy(), v.copy()

    def memory_bytes(self) -> int:
        return sum(c.ring.nbytes for c in self.channels.values())

    # ------------------------------------------------------------------ recording
    def start_recording(self, path: str | Path) -> Any:
        """Record every batch from now on to a CSV (written on the recorder's own thread)."""
        from app.state.live_recording import open_recorder

        self.stop_recording()
        self.recorder = open_recorder(path)
        return self.recorder

    def stop_recording(self) -> int:
        """Write what is queued, close; returns the rows written (0 if none was running)."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return 0
        try:
            recorder.close()
        except (OSError, ValueError) as exc:
            log.warning("recording %s ended with an error: %s", recorder.path, exc)
        return int(recorder.rows)

    # ------------------------------------------------------------------ reset
    def clear(self) -> None:
        """Forget all data (the channels stay)."""
        self.store.drain()
        for channel in self.channels.values():
            channel.ring.clear()
        self.t0 = None
        self.breaks.clear()
        self.latest = 0.0
        self.top_label = None
        self.samples_total = self.parsed_total = self.dropped_total = 0
        self._rate.clear()

    def reset(self) -> None:
        """Forget the channels too (a new device may have others)."""
        self.clear()
        self.channels.clear()
