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
import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from smp import header as smphdr
from smpclient.requests import os_management as osreq

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

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
            self.window, self.source = 1, "adapted"
            self.notes.append(f"window 2 → 1 ({why})")
            return True
        smaller = _halve(self.message, self.line_length)
        if smaller < self.message:
            self.notes.append(f"frames {self.message} → {smaller} B ({why})")
            self.message, self.source = smaller, "adapted"
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


def echo_of_size(size: int) -> osreq.EchoWrite:
    """An echo request whose whole SMP message is ``size`` bytes (or just under)."""
    empty = len(osreq.EchoWrite(d="").BYTES)
    text = max(0, size - empty - 3)  # the CBOR string length grows by up to 2 bytes
    while text > 0 and len(osreq.EchoWrite(d="x" * text).BYTES) > size:
        text -= 1
    return osreq.EchoWrite(d="x" * text)


async def _answered(session: DeviceSession, requests: list[Any], timeout_s: float) -> bool:
    """Send all requests back to back; True if every one of them is answered in time."""
    for request in requests:
        await session.transport.send(request.BYTES)
    try:
        for request in requests:
            await asyncio.wait_for(session.receive_for(request), timeout_s)
    except asyncio.TimeoutError:
        return False
    return True


async def round_trip(session: DeviceSession, timeout_s: float, tries: int = 3) -> float | None:
    """Seconds for a small echo to come back: the quickest of ``tries`` (one answer
    delayed by a busy host or a telemetry line in the way must not inflate every probe
    timeout after it); None if none is answered."""
    loop = asyncio.get_running_loop()
    best: float | None = None
    for _ in range(tries):
        started = loop.time()
        if not await _answered(session, [echo_of_size(MIN_MESSAGE)], timeout_s):
            break
        took = loop.time() - started
        best = took if best is None else min(best, took)
    return best


async def _timed(session: DeviceSession, requests: list[Any], timeout_s: float) -> float | None:
    """Seconds until every request is answered (None: not all within ``timeout_s``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    if not await _answered(session, requests, timeout_s):
        return None
    return loop.time() - started


def probe_timeout(rtt: float, message: int, baudrate: int) -> float:
    """How long a probe of ``message`` bytes may take: 4 small round trips plus its time on
    a real UART both ways (base64 adds a third), never under 0.1 s."""
    wire = 2 * message * 1.4 * 10 / max(baudrate, 1200)
    return max(0.1, 4 * rtt + 2 * wire + 0.05)


async def measure(session: DeviceSession, plan: FramePlan, timeout_s: float) -> FramePlan:
    """Find the largest frame (and window) the device answers, starting from ``plan``.

    Probe timeouts scale with the device's own round trip (a small echo first), so a
    dropped probe costs a few round trips, not a fixed second; ``timeout_s`` bounds it.
    """
    rtt = await round_trip(session, timeout_s)
    if rtt is not None:
        timeout_s = min(timeout_s, probe_timeout(rtt, plan.message, session.baudrate))
    want_window = plan.window
    plan.window = 1
    start = plan.message
    one_frame: float | None = None  # how long one full frame took to be answered
    while True:
        probe = echo_of_size(plan.message)
        if len(probe.BYTES) < smphdr.Header.SIZE + 4:
            break
        one_frame = await _timed(session, [probe], timeout_s)
        if one_frame is not None:
            break
        if not plan.shrink("unanswered probe"):
            plan.notes.append("the device answered no probe frame")
            return plan
    if plan.message < start:
        plan.source = "measured"
        plan.notes[:] = [f"the device drops {start} B frames; using {plan.message} B "
                         "(its receive pool is smaller than its advertised buffer)"]
    elif plan.source == "default" and plan.line_length and rtt is not None:
        await _grow(session, plan, rtt, timeout_s)
    if want_window > 1 and plan.message < start:
        # a receive pool that cannot take one full frame cannot take two smaller ones either
        plan.notes.append("window 1: two frames in flight would overrun the same pool")
    elif want_window > 1:
        pair = [echo_of_size(plan.message), echo_of_size(plan.message)]
        # two frames take about twice one on this link (measured just now, not the
        # nominal baud rate: a pty or USB CDC link is far faster than its "baud")
        if one_frame is not None:
            timeout_s = min(timeout_s, 3 * one_frame + 2 * (rtt or 0.0) + 0.05)
        if await _answered(session, pair, timeout_s):
            plan.window = want_window
        else:
            plan.notes.append("two frames in flight are dropped: window 1")
            plan.source = "measured"
    log.info("%s: %s", session.port, plan.describe())
    return plan


MAX_GROWN_LINES = 16
"""Without MCUmgr params, frames grow by measurement up to this many console lines
(~1.5 KB; MCUboot's serial recovery takes 1 KB by default and reports no params)."""


async def _grow(session: DeviceSession, plan: FramePlan, rtt: float, cap_s: float) -> None:
    """No params: double the frame while the device answers (it tells no buffer size)."""
    transport = session.transport
    line = plan.line_length or 128
    start = plan.message
    lines = console_lines(plan.message, line)
    while lines * 2 <= MAX_GROWN_LINES:
        candidate = message_for_lines(lines * 2, line)
        transport.set_buffer(candidate + 4)  # let a probe of this size out
        wait = min(cap_s, probe_timeout(rtt, candidate, session.baudrate))
        if not await _answered(session, [echo_of_size(candidate)], wait):
            break
        plan.message, lines = candidate, lines * 2
    transport.set_buffer(plan.message + 4)
    if plan.message > start:
        plan.source = "measured"
        plan.notes.append(f"no MCUmgr params: frames grown by measurement to {plan.message} B")


# ------------------------------------------------------------------ remembered plans
# A station flashes many boards of one kind on one port: what a device was measured to
# take is remembered per (port, transport, advertised buffer, baud), so the next board skips the
# probes. A wrong memory costs little: a plan too big shrinks on the first stalled frame.
_CACHE_NAME = "frame-plans.json"
_CACHE_MAX = 64


def _cache_path() -> Path:
    from device_drivers import paths

    return paths.cache_dir() / _CACHE_NAME


def plan_key(port: str, kind: str, params: dict[str, int] | None, line: int | None,
             baudrate: int) -> str:
    """What a plan holds for: the port, transport, advertised buffer, line length and baud
    rate (a device that keeps up with a slow UART can drop the same frames on a fast one)."""
    buf = f"{params['buf_size']}x{params['buf_count']}" if params else "noparams"
    return f"{port}|{kind}|{buf}|{line or '-'}|{baudrate}"


def remembered(key: str) -> FramePlan | None:
    try:
        entry = json.loads(_cache_path().read_text()).get(key)
        plan = FramePlan(message=int(entry["message"]), window=int(entry["window"]),
                         source="remembered", line_length=entry.get("line_length"))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None
    if plan.message < MIN_MESSAGE or plan.window < 1:
        return None
    plan.notes.append(f"measured earlier on this port: {plan.message} B, window {plan.window}")
    return plan


def remember(key: str, plan: FramePlan) -> None:
    path = _cache_path()
    try:
        data = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data.pop(key, None)
    data[key] = {"message": plan.message, "window": plan.window,
                 "line_length": plan.line_length, "at": time.time()}
    while len(data) > _CACHE_MAX:
        data.pop(next(iter(data)))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
    except OSError as exc:
        log.debug("could not remember the frame plan: %s", exc)
