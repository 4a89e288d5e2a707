"""The device session: the one owner of a board's serial port.

A session holds the open port, one I/O thread running an asyncio loop with smpclient's
serial transport, and a request lock. SMP requests go out one at a time; the bytes
between SMP frames are telemetry and log lines, fed to a ``TelemetryParser`` on the I/O
thread. Everything that talks to a device goes through a session:

    with DeviceSession.open("/dev/ttyACM0") as dev:
        print(dev.model_info())
        batch = dev.telemetry()

Every call has a timeout. An unplug ends the session: pending and later calls raise
``DisconnectedError`` at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import logging
import struct
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from smp import exceptions as smpexc
from smp import header as smphdr
from smpclient import SMPClient
from smpclient.exceptions import SMPClientException
from smpclient.generics import error
from smpclient.transport import SMPTransportDisconnected

from device_drivers import ports
from device_drivers.errors import DeviceError, DisconnectedError
from device_drivers.link import connect, framing, smp_errors
from device_drivers.link.commands import DeviceCommands
from device_drivers.link.framing import FramePlan
from device_drivers.link.pipe import PipeIO
from device_drivers.link.smp_errors import SMPErrorResponse, UnexpectedResponse
from device_drivers.link.transport import ConsoleTransport, LinkOptions, LinkTransport
from device_drivers.telemetry import TelemetryBatch, TelemetryParser

log = logging.getLogger(__name__)

T = TypeVar("T")

_DECODE_ERRORS = (smpexc.SMPDecodeError, binascii.Error, struct.error, ValueError, IndexError,
                  SMPClientException)


async def _cancel_pending() -> None:  # every other task on the loop, waited for
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


class DeviceSession(DeviceCommands):
    """One open port. Create with :meth:`open`; close with :meth:`close` or ``with``."""

    def __init__(self, port: str, *, baudrate: int = 115200, timeout_s: float = 2.0,
                 exclusive: bool = True, telemetry_format: str | None = None,
                 options: LinkOptions | None = None) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self.options = options or LinkOptions(baudrate=baudrate, exclusive=exclusive)
        self._transport: LinkTransport | None = None
        self._client: SMPClient | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"io:{port}", daemon=True)
        self._request_lock = threading.Lock()
        self._telemetry_lock = threading.Lock()
        self._parser = _make_parser(telemetry_format)
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = threading.Event()
        self._disconnect_reason: str | None = None
        self._params: dict[str, int] | None = None
        self._plan: FramePlan | None = None
        self._plan_key = ""
        self.answered = False
        """True once the device answered any SMP request on this session."""
        self.bytes_in = 0
        self.on_disconnect: Callable[[str], None] | None = None

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, port: str, *, baudrate: int = 115200, timeout_s: float = 2.0,
             exclusive: bool = True, telemetry_format: str | None = None,
             read_params: bool = True, options: LinkOptions | None = None) -> DeviceSession:
        """Open ``port`` (device path, pyserial URL or ``udp://host:port``).

        Raises PortError (or InputError) with a fix when the port cannot be opened.
        """
        session = cls(port, baudrate=baudrate, timeout_s=timeout_s, exclusive=exclusive,
                      telemetry_format=telemetry_format, options=options)
        session._thread.start()
        try:
            session._call(session._connect(read_params), timeout_s + 10.0)
        except BaseException:
            session.close()  # also releases a port that was opened before the failure
            raise
        return session

    def __enter__(self) -> DeviceSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        return not self._closed.is_set()

    @property
    def disconnect_reason(self) -> str | None:
        return self._disconnect_reason

    @property
    def transport_kind(self) -> str:
        """``console``, ``raw`` or ``udp``: how SMP travels on this link."""
        return str(self.transport.kind)

    @property
    def baudrate(self) -> int:
        return self.options.baudrate

    def close(self) -> None:
        if self._closed.is_set() and not self._thread.is_alive():
            return
        if self._thread.is_alive() and not self._loop.is_closed() and self._transport:
            try:
                self._call(self._disconnect(), 3.0, allow_closed=True)
            except Exception:
                log.debug("error while closing %s", self.port, exc_info=True)
        self._closed.set()
        self._shutdown()

    def _shutdown(self) -> None:
        if self._thread.is_alive():
            # a request its caller gave up on may still run: end it, none is destroyed pending
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(2.0)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5.0)
        if not self._thread.is_alive() and not self._loop.is_closed():
            self._loop.close()

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def use_transport(self, transport: LinkTransport) -> None:  # connect.py: the framing
        self._transport = transport
        self._client = SMPClient(transport, self.port, timeout_s=self.timeout_s)

    async def _connect(self, read_params: bool) -> None:
        await connect.open_link(self, read_params)
        if self.transport.kind == "console":  # text between frames: telemetry
            self._pump_task = self._loop.create_task(self._pump())

    async def _disconnect(self) -> None:
        if self._pump_task is not None:
            self._pump_task.cancel()
        await self.transport.disconnect()

    # ---------------------------------------------------------------- plumbing
    def _call(self, coro: Any, timeout: float, allow_closed: bool = False) -> Any:
        """Run ``coro`` on the I/O loop and wait for it, at most ``timeout`` seconds."""
        if self._closed.is_set() and not allow_closed:
            coro.close()
            raise self._disconnected_error()
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        deadline = time.monotonic() + timeout
        while True:
            try:
                return future.result(timeout=0.1)
            except (TimeoutError, FutureTimeout):  # distinct classes before Python 3.11
                if future.done():  # finished meanwhile: its value, or the job's own error
                    return future.result()
                if self._closed.is_set() and not allow_closed:
                    future.cancel()
                    raise self._disconnected_error() from None
                if time.monotonic() > deadline:
                    future.cancel()
                    raise DeviceError(
                        f"{self.port} did not answer within {timeout:.1f} s",
                        "check that the board runs an SMP server (MCUmgr) and is not busy",
                    ) from None

    @contextlib.contextmanager
    def _locked(self, timeout_s: float) -> Iterator[None]:
        """The request lock, waited for at most ``timeout_s``: every call has a timeout."""
        if not self._request_lock.acquire(timeout=max(0.0, timeout_s)):
            raise DeviceError(f"{self.port} is busy with another transfer",
                              "wait for it to finish, or cancel it")
        try:
            yield
        finally:
            self._request_lock.release()

    def _disconnected_error(self) -> DisconnectedError:
        reason = self._disconnect_reason or "the session is closed"
        return DisconnectedError(f"lost {self.port}: {reason}",
                                 "check the cable; replug the board and reconnect")

    def _mark_disconnected(self, reason: str) -> None:
        if self._closed.is_set():
            return
        self._disconnect_reason = reason
        self._closed.set()
        log.warning("%s disconnected: %s", self.port, reason)
        callback = self.on_disconnect
        if callback is not None:
            try:
                callback(reason)
            except Exception:
                log.exception("on_disconnect callback failed")

    async def _pump(self) -> None:
        """Move non-SMP bytes into the telemetry parser while no request is reading."""
        console = self.transport
        try:
            while isinstance(console, ConsoleTransport):
                # read_serial() itself sleeps 5 ms when nothing came; while data flows, go
                # straight back for more (a tty read returns at most ~4 KB), yielding only
                # so a waiting request can run.
                data = await console.read_serial()
                if data:
                    self.feed(data)
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except (SMPTransportDisconnected, OSError) as exc:
            self._mark_disconnected(str(exc) or type(exc).__name__)

    def feed(self, data: bytes) -> None:
        """Text the link read outside SMP frames: into the telemetry parser."""
        self.bytes_in += len(data)
        with self._telemetry_lock:
            self._parser.feed(data, time.time())

    async def request_async(self, request: Any, timeout_s: float) -> Any:
        """One SMP request and its answer on the I/O loop (TimeoutError when none)."""
        try:
            return await self._guarded(asyncio.wait_for(self._exchange(request), timeout_s))
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer to {type(request).__name__} in {timeout_s:.1f} s") \
                from None

    async def _exchange(self, request: Any) -> Any:
        await self.transport.send(request.BYTES)
        return await self.receive_for(request)

    async def receive_for(self, request: Any) -> Any:
        """The response to ``request``: corrupt frames and stale answers are skipped."""
        want = request.header
        while True:
            try:
                frame = await self.transport.receive()
                header = smphdr.Header.loads(frame[: smphdr.Header.SIZE])
            except _DECODE_ERRORS as exc:  # a corrupted frame: wait for the retry/timeout
                log.info("%s: dropped a corrupt SMP frame (%s)", self.port, exc)
                continue
            console = self.transport
            if isinstance(console, ConsoleTransport) and (text := await console.read_serial()):
                self.feed(text)
            self.answered = True
            if header.sequence != want.sequence or int(header.group_id) != int(want.group_id):
                log.info("%s: discarded a stale SMP response (seq %d, want %d)", self.port,
                         header.sequence, want.sequence)
                continue
            return smp_errors.parse_response(request, frame)

    # ---------------------------------------------------------------- requests
    def request(self, request: Any, timeout_s: float | None = None, retries: int = 0) -> Any:
        """Send one SMP request and return its success response; raise on error responses.

        ``retries`` resends an unanswered request (same sequence number) that many times.
        """
        timeout = self.timeout_s if timeout_s is None else timeout_s
        with self._locked(timeout):
            for attempt in range(retries + 1):
                try:
                    response = self._call(self.request_async(request, timeout), timeout + 1.0)
                    break
                except TimeoutError:
                    if attempt == retries:
                        raise DeviceError(
                            f"{self.port} did not answer {type(request).__name__} "
                            f"within {timeout:.1f} s", self._silence_hint()) from None
                    log.info("%s: retrying %s", self.port, type(request).__name__)
        if error(response):
            raise SMPErrorResponse(request, response)
        return response

    def run_exclusive(self, job: Callable[[PipeIO], Any], timeout_s: float) -> Any:
        """Run ``job(io)`` (a coroutine function) on the I/O loop, holding the request lock.

        For transfers that keep several requests in flight: ``io.send(request)`` puts a
        request on the wire, ``await io.receive(request, timeout_s)`` waits for its answer
        (raising TimeoutError). A disconnect ends the session as for :meth:`request`.
        """
        with self._locked(timeout_s):
            return self._call(self._guarded(job(PipeIO(self))), timeout_s)

    async def _guarded(self, awaitable: Any) -> Any:
        """Await I/O on the port; a lost port ends the session with DisconnectedError."""
        try:
            return await awaitable
        except TimeoutError:  # an OSError subclass, but only a late answer
            raise
        except (SMPTransportDisconnected, OSError) as exc:
            self._mark_disconnected(str(exc) or type(exc).__name__)
            raise self._disconnected_error() from exc

    @property
    def transport(self) -> LinkTransport:
        """The open transport (console, raw or udp framing)."""
        if self._transport is None:
            raise self._disconnected_error()
        return self._transport

    @property
    def smp_client(self) -> SMPClient:  # for helpers that size upload chunks
        if self._client is None:
            raise self._disconnected_error()
        return self._client

    def note_params(self, buf_size: int, buf_count: int) -> None:
        """The MCUmgr params the device reported (connect.py reads them)."""
        self._params = {"buf_size": buf_size, "buf_count": buf_count}

    def params(self) -> dict[str, int] | None:
        return dict(self._params) if self._params else None

    def _silence_hint(self) -> str:
        if self.answered:
            return ("the device answers other requests on this link, so it is not the "
                    "cable: it may be busy, or drop frames this large (try --mtu 128 "
                    "--window 1)")
        return (ports.wrong_mode_hint(self.port)
                or "check that the board runs an SMP server (MCUmgr) and is not busy")

    def frame_plan(self) -> FramePlan:
        """The frame size and window for bulk transfers, measured once per session."""
        if self._plan is not None:
            return self._plan
        plan = connect.initial_plan(self)
        key = framing.plan_key(self.port, self.transport_kind, self._params,
                               plan.line_length, self.baudrate)
        known = framing.remembered(key) if connect.needs_measuring(self) else None
        if known is not None and known.message <= plan.message:
            plan = known
        elif connect.needs_measuring(self):
            probe_timeout = max(0.3, min(self.timeout_s, 0.5)) + \
                4.0 * plan.message * 14.0 / max(self.baudrate, 1200)
            budget = probe_timeout * 12 + 5.0
            with self._locked(budget):
                plan = self._call(self._guarded(framing.measure(self, plan, probe_timeout)),
                                  budget)
        self._plan, self._plan_key = plan, key
        self.apply_plan()
        return plan

    def apply_plan(self) -> None:
        """Send no frame larger than the plan's (after a measurement or a shrink), and
        remember it for the next session on this port."""
        if self._plan is not None:
            self.transport.frame_limit = self._plan.message
            if self._plan.source != "remembered" and connect.needs_measuring(self):
                framing.remember(self._plan_key, self._plan)

    def _write_text(self, data: bytes) -> None:
        console = self.transport
        if not isinstance(console, ConsoleTransport):
            raise DeviceError(f"{self.port} carries {console.kind} SMP: no text console here")

        async def send() -> None:
            console.serial.write(data)

        with self._locked(self.timeout_s):  # never in the middle of an SMP frame
            self._call(self._guarded(send()), self.timeout_s)

    # ---------------------------------------------------------------- telemetry
    def telemetry(self) -> TelemetryBatch:
        """Everything parsed from the non-SMP bytes since the last call (a TelemetryBatch)."""
        with self._telemetry_lock:
            return self._parser.drain()


def _make_parser(fmt: str | None) -> TelemetryParser:
    return TelemetryParser(fmt)


__all__ = ["DeviceSession", "PipeIO", "SMPErrorResponse", "UnexpectedResponse"]
