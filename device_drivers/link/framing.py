"""Frames sized to what the device can really take.

A device advertises its SMP buffer (MCUmgr params ``buf_size``/``buf_count``), but a stock
Zephyr console transport also has a small receive pool of 128-byte line buffers: a frame
that fills the advertised buffer arrives as several lines in one burst, the pool runs dry
("Insufficient buffers, fragment dropped") and the frame is never answered. So before a
bulk transfer the host *measures*: it sends an echo request of the size it means to use
and halves the number of lines until the device answers, then checks that two frames in
flight are answered too. Any answer counts (an error answer still proves the frame
arrived whole). The transfer itself shrinks frames and window again if frames go
unanswered in a way smaller frames fix (``FramePlan.shrink``).

Expert settings (``--mtu``, ``--window``, ``--line-length``) skip the measurement.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from smp import header as smphdr
from smpclient.requests import os_management as osreq

log = logging.getLogger(__name__)

MIN_MESSAGE = 64
"""The smallest SMP message worth sending (a chunk with room for some data)."""


@dataclass
class FramePlan:
    """The message size and window a transfer uses, and how they were found."""

    message: int
    """Largest SMP message (8-byte header + CBOR) the host sends."""
    window: int
    """Requests in flight at once."""
    source: str
    """``params``, ``measured``, ``default`` (no params) or ``options``."""
    line_length: int | None = None
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = f", {self.line_length}-byte lines" if self.line_length else ""
        return f"{self.message} B frames, window {self.window}{lines} ({self.source})"

    def shrink(self, why: str) -> bool:
        """Smaller bursts after unanswered frames: window 1 first, then half the frame."""
        if self.window > 1:
            self.window = 1
            self.notes.append(f"window 2 → 1 ({why})")
            return True
        smaller = _halve(self.message, self.line_length)
        if smaller < self.message:
            self.notes.append(f"frames {self.message} → {smaller} B ({why})")
            self.message = smaller
            return True
        return False


def console_lines(message: int, line_length: int) -> int:
    """Console lines a message of ``message`` bytes takes (length + CRC, base64, 128 B)."""
    per_line = (line_length - 4) // 4 * 3
    return max(1, math.ceil((message + 4) / per_line))


def message_for_lines(lines: int, line_length: int) -> int:
    return max(MIN_MESSAGE, lines * ((line_length - 4) // 4 * 3) - 4)


def _halve(message: int, line_length: int | None) -> int:
    if line_length:
        lines = console_lines(message, line_length)
        if lines <= 1:
            return message
        return min(message, message_for_lines(lines // 2, line_length))
    return max(MIN_MESSAGE, message // 2) if message > MIN_MESSAGE else message


def echo_of_size(size: int) -> Any:
    """An echo request whose whole SMP message is ``size`` bytes (or just under)."""
    empty = len(osreq.EchoWrite(d="").BYTES)
    text = max(0, size - empty - 3)  # the CBOR string length grows by up to 2 bytes
    while text > 0 and len(osreq.EchoWrite(d="x" * text).BYTES) > size:
        text -= 1
    return osreq.EchoWrite(d="x" * text)


async def _answered(session: Any, requests: list[Any], timeout_s: float) -> bool:
    """Send all requests back to back; True if every one of them is answered in time."""
    for request in requests:
        await session._transport.send(request.BYTES)
    try:
        for request in requests:
            await asyncio.wait_for(session._receive_for(request), timeout_s)
    except asyncio.TimeoutError:
        return False
    return True


async def measure(session: Any, plan: FramePlan, timeout_s: float) -> FramePlan:
    """Find the largest frame (and window) the device answers, starting from ``plan``."""
    want_window = plan.window
    plan.window = 1
    start = plan.message
    while True:
        probe = echo_of_size(plan.message)
        if len(probe.BYTES) < smphdr.Header.SIZE + 4:
            break
        if await _answered(session, [probe], timeout_s):
            break
        if not plan.shrink("unanswered probe"):
            plan.notes.append("the device answered no probe frame")
            return plan
    if plan.message < start:
        plan.source = "measured"
        plan.notes[:] = [f"the device drops {start} B frames; using {plan.message} B "
                         "(its receive pool is smaller than its advertised buffer)"]
    if want_window > 1:
        pair = [echo_of_size(plan.message), echo_of_size(plan.message)]
        if await _answered(session, pair, timeout_s):
            plan.window = want_window
        else:
            plan.notes.append("two frames in flight are dropped: window 1")
            plan.source = "measured"
    log.info("%s: %s", session.port, plan.describe())
    return plan
