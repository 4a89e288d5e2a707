"""Per-port telemetry parser: bytes in (any chunking), batches of channels out.

Framing is done on whole chunks with bytes operations; each complete line goes to the decoder
of the port's format (JSON lines, Arduino plotter, Edge Impulse), which appends to plain lists
(runs of same-shaped lines are decoded column-wise in one go) that become numpy arrays only in
``drain()``. The result depends only on the byte stream (and the host times given to
``feed``), never on how it was cut into chunks: the tests check exactly that.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from device_drivers.errors import InputError
from device_drivers.telemetry.arduino import ArduinoDecoder, plotter_values
from device_drivers.telemetry.batch import TelemetryBatch
from device_drivers.telemetry.edge_impulse import EdgeImpulseDecoder, match_header
from device_drivers.telemetry.json_lines import JsonDecoder, json_object
from device_drivers.telemetry.store import Collector, DeviceClock

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("json", "arduino", "ei")
# Plotter-looking lines needed to decide "arduino": before any format is known, and to switch
# away from a detected format (JSON objects and EI headers are unambiguous: one is enough).
DETECT_LINES = 3
SWITCH_LINES = 8
_SLICE = 1 << 18  # big feeds are cut so that the memory bounds hold within one call too


class _Detector:
    """The decoder used while no format is known: every line is offered to detection."""

    name = None

    def __init__(self, foreign: Callable[[str, float], bool]) -> None:
        self.foreign = foreign

    def run(self, lines: list[str], start: int, t: float) -> int:
        foreign = self.foreign
        for i in range(start, len(lines)):
            if foreign(lines[i], t):
                return i + 1
        return len(lines)


class TelemetryParser:
    """Parses one port's telemetry. ``fmt``: ``"json"``, ``"arduino"``, ``"ei"`` or None (auto).

    ``feed(data, t)`` never raises and ``drain()`` returns everything since the previous drain.
    Lines longer than ``max_line`` bytes are dropped. Without drains, at most ``max_points``
    points, ``max_channels`` channels and ``max_lines`` console lines are kept (oldest go first,
    and are counted). In auto mode the format is decided from the first data lines (log text is
    skipped) and changes if another format's lines clearly take over (e.g. after a reflash).
    The data before the first newline is never used as plotter data (it is usually partial).

    Time stamps: a JSON line's ``"t"`` (device milliseconds) gives seconds on the device clock,
    kept monotonic across device resets and counter wraps; everything else is stamped with the
    host time ``t`` given to ``feed`` (``clock()`` when omitted).
    """

    def __init__(
        self,
        fmt: str | None = None,
        max_line: int = 4096,
        *,
        max_points: int = 1_000_000,
        max_channels: int = 256,
        max_lines: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if fmt == "auto":
            fmt = None
        if fmt is not None and fmt not in FORMATS:
            raise InputError(
                f"unknown telemetry format {fmt!r}",
                f"use one of {', '.join(FORMATS)}, or leave it out to auto-detect",
            )
        self.forced = fmt is not None
        self.max_line = max(16, int(max_line))
        self.internal_errors = 0
        self._error_counts: dict[str, int] = {}
        self._now = clock
        self._sink = Collector(max_points, max_channels, max_lines)
        self._clock = DeviceClock()
        self._candidates: list[tuple[str, float]] = []
        self._decoders = {
            "json": JsonDecoder(self._sink, self._clock, self._foreign, self._candidates),
            "arduino": ArduinoDecoder(self._sink, self._foreign),
            "ei": EdgeImpulseDecoder(self._sink, self._foreign, self._candidates),
        }
        self._decoder = self._decoders[fmt] if fmt else _Detector(self._foreign)
        self._pending = b""
        self._skipping = False  # inside an over-long line, until its newline
        self._first = True  # the first line has not been seen yet

    @property
    def format(self) -> str | None:
        """The format in use: forced, detected, or None while still detecting."""
        return self._decoder.name

    @property
    def device_resets(self) -> int:
        """How often the device's ``"t"`` went backwards (reset or counter wrap)."""
        return self._clock.resets

    @property
    def internal_error_counts(self) -> dict[str, int]:
        """Internal errors (parser bugs caught so the reader thread lives) per exception class,
        e.g. ``{"ValueError": 3}``; ``internal_errors`` is their sum. Each class is logged
        with its traceback the first time it occurs, then only counted."""
        return dict(self._error_counts)

    def _internal_error(self, exc: Exception, where: str) -> None:
        name = type(exc).__qualname__
        if type(exc).__module__ not in ("builtins", __name__):
            name = f"{type(exc).__module__}.{name}"
        self.internal_errors += 1
        count = self._error_counts[name] = self._error_counts.get(name, 0) + 1
        if count == 1:
            log.error("telemetry parser: %s in %s, data dropped (further %s errors are only "
                      "counted: internal_error_counts)", name, where, name, exc_info=exc)

    def buffered(self) -> dict[str, int]:
        """Sizes of what is held until the next drain (for monitoring and tests)."""
        return {
            "points": self._sink.pending_points(),
            "channels": len(self._sink.channels),
            "lines": len(self._sink.console),
            "pending_bytes": len(self._pending),
        }

    def feed(self, data: bytes, t: float | None = None) -> None:
        """Parse a chunk of bytes received at host time ``t`` (seconds; default: monotonic)."""
        try:
            if t is None or not math.isfinite(t):
                t = float(self._now())
            if type(data) is not bytes:
                data = data.encode() if isinstance(data, str) else bytes(data)
            for pos in range(0, len(data), _SLICE):
                self._feed(data[pos : pos + _SLICE] if len(data) > _SLICE else data, t)
                self._clock.observe(t)
                self._sink.enforce_bounds()
        except Exception as exc:  # a parser bug must not kill the port's reader thread
            self._sink.dropped += 1
            self._pending, self._skipping = b"", True  # resynchronise at the next newline
            self._internal_error(exc, "feed")

    def drain(self) -> TelemetryBatch:
        """Everything parsed since the previous drain."""
        try:
            batch = self._sink.drain(self.format)
            batch.sync, batch.breaks = self._clock.take()
            return batch
        except Exception as exc:
            self._internal_error(exc, "drain")
            return TelemetryBatch(format=self.format)

    # ---- framing -------------------------------------------------------------------------

    def _feed(self, data: bytes, t: float) -> None:
        nl = data.rfind(b"\n")
        if nl < 0:
            if not self._skipping:
                self._hold(self._pending + data)
            return
        complete = self._pending + data[:nl] if self._pending else data[:nl]
        self._pending = b""
        if self._skipping:  # the over-long line ends at the first newline
            self._skipping = False
            cut = complete.find(b"\n")
            complete = None if cut < 0 else complete[cut + 1 :]
        if complete is not None:
            self._complete(complete, t)
        self._hold(data[nl + 1 :])

    def _complete(self, complete: bytes, t: float) -> None:
        """Parse complete lines ("\n"-separated, without the final newline)."""
        if self._first:
            self._first = False
            cut = complete.find(b"\n")
            first, rest = (complete, None) if cut < 0 else (complete[:cut], complete[cut + 1 :])
            lines = self._decode(first)
            if lines:
                self._first_line(lines[0], t)
            if rest is None:
                return
            complete = rest
        lines = self._decode(complete)
        i = 0
        while i < len(lines):
            i = self._decoder.run(lines, i, t)

    def _hold(self, rest: bytes) -> None:
        """Keep an incomplete line; one that is already too long is dropped (and counted)."""
        if len(rest) > self.max_line + 1:  # + 1: the line's "\r" is not part of its length
            self._pending = b""
            self._skipping = True
            self._first = False
            self._sink.dropped += 1
        else:
            self._pending = rest

    def _decode(self, complete: bytes) -> list[str]:
        """Lines of ``complete`` ("\\n"-separated); console gets them; bad ones are counted."""
        sink = self._sink
        limit = self.max_line
        if complete.isascii():
            text = complete.decode("ascii")
            if "\r" in text:
                text = text.replace("\r\n", "\n")
                if text.endswith("\r"):
                    text = text[:-1]
            lines = text.split("\n")
            if max(map(len, lines)) > limit:
                kept = [line for line in lines if len(line) <= limit]
                sink.dropped += len(lines) - len(kept)
                lines = kept
            sink.add_console(lines)
            return lines
        lines, console = [], []
        for raw in complete.split(b"\n"):
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if len(raw) > limit:
                sink.dropped += 1
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                sink.dropped += 1
                console.append(raw.decode("utf-8", "replace"))  # a baud mismatch shows
                continue
            lines.append(line)
            console.append(line)
        sink.add_console(console)
        return lines

    # ---- format detection ----------------------------------------------------------------

    def _first_line(self, line: str, t: float) -> None:
        """The first line is usually the tail of a line sent before we listened."""
        pairs = plotter_values(line)
        if pairs:
            self._sink.dropped += 1
            return
        i = 0
        while i < 1:
            i = self._decoder.run([line], i, t)

    def _switch(self, fmt: str) -> None:
        if self._decoder.name is not None:
            log.info("telemetry format changed from %s to %s", self._decoder.name, fmt)
        self._decoder = self._decoders[fmt]
        self._candidates.clear()

    def _foreign(self, line: str, t: float) -> bool:
        """A line the current decoder does not own: detect (auto mode). True if switched."""
        if self.forced:
            return False
        current = self._decoder.name
        head = line.lstrip()[:1]
        if head == "{":
            if current != "json":
                obj = json_object(line)
                if obj is not None:
                    self._switch("json")
                    self._decoders["json"].sample(obj, t)
                    return True
            return False
        if (head == "P" or head == "T") and current != "ei":
            match = match_header(line)
            if match is not None:
                self._switch("ei")
                self._decoders["ei"].open_block(match, t)
                return True
        if current == "arduino" or line[:1] in (" ", "\t"):
            return False  # indented "label: value" is Edge Impulse mid-block, not a vote
        pairs = plotter_values(line)
        if not pairs:
            return False
        candidates = self._candidates
        candidates.append((line, t))
        if len(candidates) < (DETECT_LINES if current is None else SWITCH_LINES):
            return False
        replay = list(candidates)
        self._switch("arduino")
        for old_line, old_t in replay:
            self._decoders["arduino"].run([old_line], 0, old_t)
        return True
