"""SMP server plumbing: reassemble console-framed requests, dispatch, encode replies.

Framing is ``smp.packet`` (base64 lines, ``06 09`` start / ``04 14`` continuation,
CRC16); messages are ``smp``'s pydantic classes. :class:`RxFramer` is a pure class
(bytes in, events out); :class:`Dispatcher` maps (group, op, command) to handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import cbor2
from pydantic import ValidationError
from smp import error as smperror
from smp import header as smphdr
from smp import message as smpmsg
from smp import packet as smppacket

log = logging.getLogger(__name__)

LINE_LENGTH = 128
"""Encoded line length of replies: the SMP console convention."""
MAX_LINE = 8192
"""A line longer than this without a newline is noise and is discarded."""


@dataclass
class RxEvent:
    kind: str
    """``frame`` (a complete, CRC-checked SMP message), ``bad`` (a malformed frame) or
    ``text`` (a non-SMP line)."""
    data: bytes = b""
    reason: str = ""


class RxFramer:
    """Splits received bytes into lines and reassembles SMP frames (no I/O)."""

    def __init__(self, max_frame: int, mutate: Callable[[bytes], bytes] | None = None) -> None:
        self.max_frame = max_frame
        self._mutate = mutate
        self._buf = bytearray()
        self._decoder = None
        self._frame_bytes = 0

    def reset(self) -> None:
        self._buf.clear()
        self._decoder = None

    def feed(self, data: bytes) -> list[RxEvent]:
        events: list[RxEvent] = []
        self._buf.extend(data)
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                if len(self._buf) > MAX_LINE:
                    self._buf.clear()
                    events.append(self._abort("line too long") or RxEvent("text", b""))
                break
            line = bytes(self._buf[: nl + 1])
            del self._buf[: nl + 1]
            if self._mutate is not None:
                line = self._mutate(line)
            events.extend(self._line(line))
        return [e for e in events if e.kind != "text" or e.data]

    def _abort(self, reason: str) -> RxEvent | None:
        if self._decoder is None:
            return None
        self._decoder = None
        return RxEvent("bad", reason=reason)

    def _line(self, line: bytes) -> list[RxEvent]:
        events: list[RxEvent] = []
        starts = [i for i in (line.find(smppacket.START_DELIMITER),
                              line.find(smppacket.CONTINUE_DELIMITER)) if i >= 0]
        at = min(starts) if starts else -1
        if at != 0:  # text before (or instead of) an SMP packet
            text = line if at < 0 else line[:at]
            stale = self._abort("interrupted by text")
            if stale:
                events.append(stale)
            events.append(RxEvent("text", text))
            if at < 0:
                return events
            line = line[at:]
        if line.startswith(smppacket.START_DELIMITER):
            stale = self._abort("new frame before the last one ended")
            if stale:
                events.append(stale)
            self._decoder = smppacket.decode()
            next(self._decoder)
            self._frame_bytes = 0
        elif self._decoder is None:
            events.append(RxEvent("bad", reason="continuation without a start"))
            return events
        self._frame_bytes += len(line)
        try:
            self._decoder.send(line)
        except StopIteration as done:
            self._decoder = None
            frame = bytes(done.value)
            if len(frame) + 4 > self.max_frame:
                events.append(RxEvent("bad", reason=f"frame of {len(frame)} B exceeds buf_size"))
            else:
                events.append(RxEvent("frame", frame))
            return events
        except Exception as exc:  # bad base64, CRC, delimiter, length field
            self._decoder = None
            events.append(RxEvent("bad", reason=f"{type(exc).__name__}: {exc}"))
            return events
        if self._frame_bytes > 2 * self.max_frame:
            events.append(self._abort("frame longer than buf_size") or RxEvent("bad"))
        return events


def encode_frame(message: bytes) -> bytes:
    """One SMP message → its console-framed lines, joined (written as one unit)."""
    return b"".join(smppacket.encode(message, line_length=LINE_LENGTH))


class Fail(Exception):
    """Raised by a handler: reply with an SMP error.

    ``group`` None → a general error ``{"rc": rc}`` (``MGMT_ERR``); else a group error
    ``{"err": {"group": group, "rc": rc}}`` (see :meth:`Dispatcher._error`).
    """

    def __init__(self, rc: int, group: int | None = None, reason: str = "",
                 error_cls: type[smperror.ErrorV2] | None = None,
                 extra: dict[str, object] | None = None) -> None:
        super().__init__(reason or f"rc={rc}")
        self.rc = int(rc)
        self.group = group
        self.reason = reason
        self.error_cls = error_cls
        self.extra = extra or {}
        """Fields Zephyr sends beside a version-2 group error (``len`` of a bad offset)."""


Handler = Callable[[smpmsg.Request], smpmsg.Response | tuple[smpmsg.Response, Callable[[], None]]]


@dataclass
class Route:
    request: type[smpmsg.Request]
    handler: Handler


@dataclass
class Dispatcher:
    routes: dict[tuple[int, int, int], Route] = field(default_factory=dict)
    """(group, op, command) → route."""
    error_classes: dict[int, type[smperror.ErrorV2]] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    """group → its name as Zephyr's enumeration group reports it (``fs mgmt``)."""
    legacy_rc: dict[int, Callable[[int], int]] = field(default_factory=dict)
    """group → its translation of a group rc for version-1 requests (Zephyr's
    ``mg_translate_error``); groups without one answer ``MGMT_ERR.EUNKNOWN``."""

    def add(self, request: type[smpmsg.Request], handler: Handler) -> None:
        key = (int(request._GROUP_ID), int(request._OP), int(request._COMMAND_ID))
        self.routes[key] = Route(request, handler)

    def handle(self, frame: bytes) -> tuple[bytes | None, Callable[[], None] | None]:
        """A request frame → (reply message bytes or None, action to run after sending)."""
        if len(frame) < smphdr.Header.SIZE:
            return None, None
        raw = smphdr.Header._STRUCT.unpack(frame[: smphdr.Header.SIZE])
        op_ver, _flags, _length, group, _seq, command = raw
        op = op_ver & 0b111
        version = (op_ver >> 3) & 0b11
        if op not in (smphdr.OP.READ, smphdr.OP.WRITE) or version > 1:
            return None, None  # a response or a future version: not for us
        route = self.routes.get((group, op, command))
        if route is None:
            return self._error(frame, Fail(smperror.MGMT_ERR.ENOTSUP)), None
        try:
            request = route.request.loads(frame)
        except (ValidationError, ValueError, TypeError, cbor2.CBORDecodeError) as exc:
            log.debug("bad request %s: %s", route.request.__name__, exc)
            return self._error(frame, Fail(smperror.MGMT_ERR.EINVAL)), None
        try:
            result = route.handler(request)
        except Fail as fail:
            return self._error(frame, fail), None
        except Exception:  # a bug in a handler must not kill the board
            log.exception("handler for %s failed", route.request.__name__)
            return self._error(frame, Fail(smperror.MGMT_ERR.EUNKNOWN, reason="internal")), None
        after = None
        if isinstance(result, tuple):
            result, after = result
        return self._reply(frame, result.smp_data[smphdr.Header.SIZE:]), after

    @staticmethod
    def _header(frame: bytes, length: int) -> smphdr.Header | bytes:
        """The reply header for request ``frame``: same group, command, sequence, version."""
        op_ver, _flags, _length, group, seq, command = smphdr.Header._STRUCT.unpack(
            frame[: smphdr.Header.SIZE])
        op = smphdr.OP((op_ver & 0b111) + 1)
        version = smphdr.Version((op_ver >> 3) & 0b11)
        try:
            return smphdr.Header(op=op, version=version, flags=smphdr.Flag(0), length=length,
                                 group_id=group, sequence=seq, command_id=command)
        except ValueError:  # a command id smp does not know for a known group
            first = smphdr.Header._pack_op_and_version(op, version)
            return smphdr.Header._STRUCT.pack(first, 0, length, group, seq, command)

    def _reply(self, frame: bytes, cbor_body: bytes) -> bytes:
        return bytes(self._header(frame, len(cbor_body))) + cbor_body

    def _error(self, frame: bytes, fail: Fail) -> bytes:
        """Zephyr 4.4's error answer: ``{"rc": n}`` for a general error (no ``rsn``: the
        stock build has no verbose errors); a group error is ``{"err": {"group", "rc"}}``
        (plus any extra fields) to a version-2 request, and the group's legacy ``rc`` to
        a version-1 one."""
        version = (frame[0] >> 3) & 0b11
        fields: dict[str, object]
        if fail.group is None:
            fields = {"rc": fail.rc}
        elif version == smphdr.Version.V1:
            translate = self.legacy_rc.get(fail.group)
            fields = {"rc": int(translate(fail.rc) if translate else smperror.MGMT_ERR.EUNKNOWN)}
        else:
            fields = {"err": {"group": fail.group, "rc": fail.rc}, **fail.extra}
        # canonical key order, as resources/protocol's vectors fix it (Zephyr sends
        # "group" before "rc": the same map)
        cbor_body = cbor2.dumps(fields, canonical=True)
        return bytes(self._header(frame, len(cbor_body))) + cbor_body
