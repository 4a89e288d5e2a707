"""Opening a link: pick the transport, read MCUmgr params, plan the frame size.

Console framing is tried first (nearly every board speaks it). A port that stays silent
to it may run Zephyr's raw (unencoded) UART transport, which cannot share its line with
text: such a port is probed with a bare SMP request once the raw server has dropped the
console bytes (it discards a partial message after its input timeout, ~2 s by default),
and the link continues raw if it answers. A port that printed text is not raw. Explicit
``--transport`` skips the guessing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from smp import exceptions as smpexc
from smpclient.exceptions import SMPClientException
from smpclient.generics import error
from smpclient.requests import os_management as osreq

from device_drivers.link import framing
from device_drivers.link.transport import (
    ConsoleTransport,
    RawTransport,
    first_kind,
    make_transport,
)

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

log = logging.getLogger(__name__)

RAW_INPUT_TIMEOUT_S = 2.2
"""Wait this long after console bytes before a raw probe: Zephyr's raw UART transport
drops a partial message after CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT_TIME_MS."""


_SEEN: dict[str, tuple[str, float]] = {}
"""Ports this process found speaking raw SMP in the last minute: tried raw first (console
bytes would block a raw server for its ~2 s input timeout). A board rebooting after a flash
is waited on with the transport it spoke before (flashing passes it explicitly)."""
SEEN_FOR_S = 60.0


def _seen(port: str) -> str | None:
    kind, when = _SEEN.get(port, ("", 0.0))
    return kind if kind and time.monotonic() - when < SEEN_FOR_S else None


async def open_link(session: DeviceSession, read_params: bool) -> None:
    options = session.options
    kind = first_kind(session.port, options)
    seen = _seen(session.port) if options.transport == "auto" else None
    if seen == "raw" and kind == "console" and read_params:
        raw = make_transport(session.port, options, "raw")
        session.use_transport(raw)
        await raw.connect(session.port, session.timeout_s)
        if await read_params_into(session, min(session.timeout_s, 1.0)):
            _SEEN[session.port] = ("raw", time.monotonic())
            return
        await raw.disconnect()  # not raw any more: detect from scratch
    transport = make_transport(session.port, options, kind)
    session.use_transport(transport)
    await transport.connect(session.port, session.timeout_s)
    console = transport if isinstance(transport, ConsoleTransport) else None
    if seen == "raw" and console is not None:  # end the line the raw probe left behind
        with contextlib.suppress(OSError):
            console.serial.write(b"\n")
    if not read_params:
        return
    if await read_params_into(session, min(session.timeout_s, 1.0)):
        _SEEN[session.port] = (transport.kind, time.monotonic())
        return
    if options.transport != "auto" or console is None or session.bytes_in:
        return
    text = await console.read_serial()
    if text:
        session.feed(text)
        return
    if not await _try_raw(session):
        # a console server ignores the raw probe's bytes until a newline: end that line
        with contextlib.suppress(OSError):
            console.serial.write(b"\n")


async def read_params_into(session: DeviceSession, timeout_s: float) -> bool:
    """Ask for MCUmgr params; True if the device answered at all (an error counts)."""
    try:
        response = await session.request_async(osreq.MCUMgrParametersRead(), timeout_s)
    except TimeoutError:
        log.info("%s: no answer to MCUmgr params over %s", session.port,
                 session.transport.kind)
        return False
    session.answered = True
    if error(response):
        log.info("%s: no MCUmgr params (%s); conservative frames", session.port, response)
        return True
    buf_size, buf_count = int(response.buf_size), int(response.buf_count)
    session.note_params(buf_size, buf_count)
    try:
        session.transport.set_buffer(buf_size)
    except ValueError as exc:  # a buffer too small to carry any message
        log.warning("%s: unusable MCUmgr buf_size %d (%s)", session.port, buf_size, exc)
    return True


async def _try_raw(session: DeviceSession) -> bool:
    console = session.transport
    if not isinstance(console, ConsoleTransport):
        return False
    raw = RawTransport(session.options)
    object.__setattr__(raw, "_conn", console.serial)  # same open port, other framing
    await asyncio.sleep(RAW_INPUT_TIMEOUT_S)  # the raw server's own timer, not a guess
    request = osreq.MCUMgrParametersRead()
    await raw.send(request.BYTES)

    async def answer() -> None:
        while (await raw.receive())[6] != request.header.sequence:
            continue

    try:
        await asyncio.wait_for(answer(), max(0.5, min(session.timeout_s, 1.0)))
    except (asyncio.TimeoutError, SMPClientException, smpexc.SMPException, ValueError,
            IndexError):
        return False
    log.info("%s: the device speaks raw SMP (unencoded UART transport)", session.port)
    _SEEN[session.port] = ("raw", time.monotonic())
    session.use_transport(raw)
    await read_params_into(session, min(session.timeout_s, 1.0))
    return True


def initial_plan(session: DeviceSession) -> framing.FramePlan:
    """Frames from the options and what the device reported, before any measurement."""
    options = session.options
    transport = session.transport
    params = session.params() or {}
    message = transport.max_unencoded_size
    if options.mtu:
        message = min(message, options.mtu)
    # one of the device's buffers carries the answer: pipeline only with three or more
    window = options.window or (2 if params.get("buf_count", 1) >= 3 else 1)
    source = "options" if options.mtu or options.window else (
        "params" if params else "default")
    line = getattr(transport, "line_length", None) if transport.kind == "console" else None
    return framing.FramePlan(message=message, window=window, source=source, line_length=line)


def needs_measuring(session: DeviceSession) -> bool:
    options = session.options
    if session.transport.kind == "udp":
        return False  # datagrams: no line pool to overrun
    return not (options.mtu and options.window)
