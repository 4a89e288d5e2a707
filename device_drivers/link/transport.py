"""smpclient's transports, opened through our port layer, with frames we can resize.

Three transports, all smpclient's own, each subclassed only where it must be:

* ``ConsoleTransport`` — SMP over a console (base64 lines, 128 bytes by convention; what
  Zephyr calls the UART and shell transports). Text between frames is telemetry.
* ``RawTransport`` — Zephyr 4.4's unencoded ("raw") UART transport: bare SMP messages,
  nothing else on the line.
* ``UdpTransport`` — SMP over UDP (``udp://host:port``, IPv4 or ``udp://[::1]:port``).

The serial ones open the port with ``serial_for_url`` through ``device_drivers.ports`` (so
``socket://`` reaches emulators, and every failure is a ``PortError`` with a fix) — the one
thing smpclient's ``connect`` cannot do. Each has a ``frame_limit``: the largest SMP message
we send, lowered when the device shows it cannot take what it advertises.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from typing import Any

from serial import SerialException
from smpclient.exceptions import SMPClientException
from smpclient.transport import SMPTransportDisconnected
from smpclient.transport.serial import BufferSize, SMPSerialRawTransport, SMPSerialTransport
from smpclient.transport.udp import SMPUDPTransport
from typing_extensions import override

from device_drivers import ports
from device_drivers.errors import InputError
from device_drivers.link.options import DEFAULT_LINE_LENGTH
from device_drivers.link.options import LinkOptions as LinkOptions  # session.py imports it here

log = logging.getLogger(__name__)

_READ_SIZE = 1 << 16  # per read while data flows (a pty gives ~4 KB, a USB CDC port more)

_UDP = re.compile(r"^udp://(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:/\[\]]+)):(?P<port>\d+)/?$")


def parse_udp(address: str) -> tuple[str, int]:
    """(host, port) of ``udp://host:port`` or ``udp://[v6]:port``; InputError otherwise."""
    match = _UDP.match(address)
    if not match:
        raise InputError(f"{address} is not a UDP address",
                         "write it as udp://HOST:PORT, e.g. udp://192.0.2.1:1337 or "
                         "udp://[::1]:1337")
    port = int(match["port"])
    if not 0 < port < 65536:
        raise InputError(f"{address}: port {port} is out of range", "use a port 1-65535")
    return match["v6"] or match["host"], port


def is_udp(address: str) -> bool:
    return address.lower().startswith("udp://")


def _capped(size: int, limit: int | None) -> int:
    """The transport's own maximum, lowered to the frame the device was found to take."""
    return min(size, limit) if limit else size


def _open(address: str, baudrate: int, exclusive: bool) -> Any:
    # Any: the object is a concrete port class (serial.Serial or a URL handler's), which has
    # reset_input_buffer and usually out_waiting; the stubs only promise SerialBase
    conn: Any = ports.open_serial(address, baudrate=baudrate, timeout=0.0,
                                  exclusive=exclusive)
    with contextlib.suppress(OSError):  # some URL handlers and ptys refuse; nothing lost
        conn.reset_input_buffer()
    if not hasattr(conn, "out_waiting"):
        # socket:// has no host-side output queue: nothing to drain after a write.
        with contextlib.suppress(AttributeError, TypeError):
            conn.out_waiting = 0
    return conn


async def _readable(fd: int, timeout_s: float) -> bool:
    """Wait until ``fd`` is readable (or hung up), at most ``timeout_s``; False on timeout."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[bool] = loop.create_future()

    def settle(value: bool) -> None:
        if not ready.done():
            ready.set_result(value)

    try:
        loop.add_reader(fd, settle, True)
    except (NotImplementedError, ValueError, OSError):  # no selector loop, or fd in use
        return False
    timer = loop.call_later(timeout_s, settle, False)
    try:
        return await ready
    finally:
        timer.cancel()
        loop.remove_reader(fd)


def _adopt(transport: Any, conn: Any) -> None:
    """Put our opened port where smpclient's serial base keeps its connection.

    smpclient's ``connect`` opens ``serial.Serial(port=...)`` by name, which cannot open
    pyserial URLs; its own emulator tests swap the connection object the same way.
    """
    object.__setattr__(transport, "_conn", conn)


class ConsoleTransport(SMPSerialTransport):
    """SMP over a console: base64 lines, text in between (smpclient's serial transport)."""

    kind = "console"

    def __init__(self, options: LinkOptions) -> None:
        line = options.line_length or DEFAULT_LINE_LENGTH
        strategy: Any = None
        if options.line_length is not None:
            # the device's buffer is not known yet: allow any size; frame_limit caps it
            strategy = BufferSize(buf_size=1 << 16, line_length=line)
        try:
            if strategy is None:
                super().__init__(baudrate=options.baudrate, timeout=0, write_timeout=5.0)
            else:
                super().__init__(strategy, baudrate=options.baudrate, timeout=0,
                                 write_timeout=5.0)
        except ValueError as exc:  # pyserial checks the settings when the object is made
            raise InputError(f"invalid serial settings: {exc}",
                             "use a positive baud rate such as 115200") from exc
        self.options = options
        self.line_length = line
        self.frame_limit: int | None = None
        self._fd_nonblocking: int | None = None
        if options.line_length is not None:
            # until params arrive: two lines' worth, smpclient's own safe default
            self.frame_limit = 2 * ((line - 4) // 4 * 3) - 4

    @override
    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        conn = _open(address, self.options.baudrate, self.options.exclusive)
        _adopt(self, conn)
        fd = getattr(conn, "fd", None)
        # the direct read only on a non-blocking descriptor (pyserial's POSIX ports)
        self._fd_nonblocking = fd if type(fd) is int and not os.get_blocking(fd) else None
        log.debug("opened %s (console framing)", address)

    @property
    def serial(self) -> Any:
        return self._conn

    async def _read_all(self) -> bytes:  # type: ignore[misc]  # @final in smpclient
        """What has arrived: one ``read`` of up to 64 KB on a POSIX port's non-blocking fd.

        pyserial's ``read_all`` costs three system calls per chunk (``TIOCINQ``, ``select``,
        ``read``), each a GIL hand-off on the I/O thread, for every ~4 KB a tty returns.
        When nothing is waiting it waits (at most smpclient's poll interval) for the fd to
        become readable, then reads again: a pty refills ~4 KB at a time, and sleeping the
        full 5 ms poll whenever the reader got ahead was most of the lost time. Still
        nothing (or EOF): smpclient's own read runs, so a vanished port fails as before
        (``SMPTransportDisconnected``)."""
        fd = getattr(self._conn, "fd", None)
        if type(fd) is int and self._fd_nonblocking == fd:
            data = self._read_fd(fd)
            if not data and await _readable(fd, self._POLLING_INTERVAL_S):
                data = self._read_fd(fd)  # woken by the bytes, not after a fixed 5 ms nap
            if data:
                return data
        return await super()._read_all()

    def _read_fd(self, fd: int) -> bytes:
        try:
            return os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise SMPTransportDisconnected(f"lost {self._conn.port}: {exc}") from exc

    @override
    @property
    def max_unencoded_size(self) -> int:
        return _capped(super().max_unencoded_size, self.frame_limit)

    def set_buffer(self, buf_size: int) -> None:
        """The device's MCUmgr ``buf_size``: a message may fill it, less the 4 framing bytes."""
        if self.options.line_length is None:
            self.initialize(buf_size)
            self.frame_limit = None
        else:
            self.frame_limit = buf_size - 4


class RawTransport(SMPSerialRawTransport):
    """Zephyr's unencoded UART transport: bare SMP messages, no text on the line.

    ``receive`` keeps the bytes after one message for the next call, so several requests
    may be in flight (smpclient's own raw receive reads everything that arrived into one
    message and refuses a second answer that came with it).
    """

    kind = "raw"
    _HEADER = 8

    def __init__(self, options: LinkOptions) -> None:
        try:
            super().__init__(mtu=options.mtu or 384, baudrate=options.baudrate, timeout=0,
                             write_timeout=5.0)
        except ValueError as exc:
            raise InputError(f"invalid serial settings: {exc}",
                             "use a positive baud rate such as 115200") from exc
        self.options = options
        self.frame_limit: int | None = options.mtu
        self._rx = bytearray()

    @override
    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        self._rx.clear()
        _adopt(self, _open(address, self.options.baudrate, self.options.exclusive))
        log.debug("opened %s (raw SMP)", address)

    @override
    async def receive(self) -> bytes:
        while True:
            if len(self._rx) >= self._HEADER:
                total = self._HEADER + int.from_bytes(self._rx[2:4], "big")
                if total > max(self.mtu, 1 << 16):
                    self._rx.clear()
                    raise SMPClientException(f"a raw SMP header claims {total} B")
                if len(self._rx) >= total:
                    message = bytes(self._rx[:total])
                    del self._rx[:total]
                    return message
            try:
                data = self.serial.read_all() or b""
            except (SerialException, OSError) as exc:
                raise SMPTransportDisconnected(f"lost the raw SMP link: {exc}") from exc
            if data:
                self._rx.extend(data)
            else:
                await asyncio.sleep(0.002)

    @property
    def serial(self) -> Any:
        return self._conn

    @override
    @property
    def mtu(self) -> int:
        return self.frame_limit or super().mtu

    def set_buffer(self, buf_size: int) -> None:
        if self.options.mtu is None:
            self.frame_limit = buf_size


class UdpTransport(SMPUDPTransport):
    """SMP over UDP; one datagram per message, sized from the device's buffer."""

    kind = "udp"

    def __init__(self, options: LinkOptions) -> None:
        super().__init__(mtu=1500)
        self.options = options
        self.frame_limit: int | None = options.mtu

    @override
    async def connect(self, address: str, timeout_s: float, port: int = 1337) -> None:
        host, udp_port = parse_udp(address)
        try:
            await super().connect(host, timeout_s, udp_port)
        except OSError as exc:
            raise InputError(f"cannot reach {address}: {exc.strerror or exc}",
                             "check the address and that the device is on this network") \
                from exc

    @override
    @property
    def max_unencoded_size(self) -> int:
        return _capped(super().max_unencoded_size, self.frame_limit)

    def set_buffer(self, buf_size: int) -> None:
        if self.options.mtu is None:
            self.frame_limit = buf_size


LinkTransport = ConsoleTransport | RawTransport | UdpTransport
"""The transports a session talks through (``kind``: console, raw or udp)."""


def make_transport(address: str, options: LinkOptions, kind: str) -> LinkTransport:
    """A transport of ``kind`` (console, raw or udp) for ``address``."""
    if kind == "udp":
        return UdpTransport(options)
    if kind == "raw":
        return RawTransport(options)
    return ConsoleTransport(options)


def first_kind(address: str, options: LinkOptions) -> str:
    """The transport to try first: what was asked, UDP for udp://, else the console."""
    if is_udp(address):
        if options.transport not in ("auto", "udp"):
            raise InputError(f"{address} is a UDP address; --transport {options.transport} "
                             "needs a serial port", "drop --transport, or use a serial port")
        return "udp"
    if options.transport == "udp":
        raise InputError(f"--transport udp needs a udp://HOST:PORT address, not {address}")
    if options.transport in ("console", "shell"):
        return "console"
    return "raw" if options.transport == "raw" else "console"
