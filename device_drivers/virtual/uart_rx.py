"""Zephyr's ``uart_mcumgr`` receive path: line buffers from a small pool (no I/O).

Every console line (SMP fragment or text) needs one buffer of ``line_max`` bytes from a
pool of ``pool`` buffers. A buffer is taken when a line's first byte arrives and given
back once the SMP work queue has processed the line — which, on the MCU, happens only
after the UART interrupt has handed over everything that arrived in one burst. So in
one burst at most ``pool`` lines get a buffer (minus one still held by a line that began
in an earlier burst); the rest are dropped, each with the warning Zephyr logs. A line
longer than its buffer is dropped too. A frame that lost a line fails its length or
CRC check later and is never answered, as on the board.
"""

from __future__ import annotations

from collections.abc import Callable

NO_BUFFER = "Insufficient buffers, fragment dropped"
LINE_TOO_LONG = "Line too long, fragment dropped"


class ConsoleRx:
    """Feed it one burst at a time; it returns the complete lines that got a buffer."""

    def __init__(self, line_max: int | None, pool: int | None,
                 warn: Callable[[str], None] | None = None) -> None:
        self.line_max = line_max
        self.pool = pool
        self._warn = warn or (lambda _msg: None)
        self._line = bytearray()
        self._has_buffer = False
        self._ignoring = False
        self.dropped_no_buffer = 0
        self.dropped_too_long = 0

    def reset(self) -> None:
        self._line.clear()
        self._has_buffer = self._ignoring = False

    def feed(self, burst: bytes) -> bytes:
        """One burst in; the surviving complete lines out (joined, newlines kept)."""
        out = bytearray()
        free = None if self.pool is None else self.pool - (1 if self._has_buffer else 0)
        pos = 0
        while pos < len(burst):
            nl = burst.find(b"\n", pos)
            end = len(burst) if nl < 0 else nl + 1
            chunk = burst[pos:end]
            pos = end
            if not self._line and not self._has_buffer and not self._ignoring:
                # a new line starts: it needs a buffer from the pool
                if free is not None and free <= 0:
                    self._drop(NO_BUFFER)
                else:
                    self._has_buffer = True
                    if free is not None:
                        free -= 1
            if not self._ignoring:
                if self.line_max is not None and len(self._line) + len(chunk) > self.line_max:
                    self._drop(LINE_TOO_LONG)
                else:
                    self._line += chunk
            if nl >= 0:  # end of line: hand it over (the buffer returns after the burst)
                if not self._ignoring:
                    out += self._line
                self._line.clear()
                self._has_buffer = self._ignoring = False
        return bytes(out)

    def _drop(self, reason: str) -> None:
        self._ignoring = True
        self._line.clear()
        if reason == NO_BUFFER:
            self.dropped_no_buffer += 1
        else:
            self.dropped_too_long += 1
        self._warn(reason)
