"""One upload loop for files (fs group) and MCUboot images (img group).

Chunks are sized so each request fills the frame the device can take (``FramePlan``,
through smpclient's ``get_max_cbor_and_data_size``), up to ``plan.window`` requests are in
flight, the device's answered offset is followed (it is the truth after a lost chunk), a
stall shrinks the frames and window before it counts as a failure, and the cancel token is
checked between chunks. What differs between files and images is a small ``Target``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from smp import file_management as smpfs
from smpclient.generics import error
from smpclient.requests import file_management as fsreq
from smpclient.requests import image_management as imgreq

from device_drivers.errors import Cancelled, DeviceError, DisconnectedError
from device_drivers.link.smp_errors import SMPErrorResponse
from tinyops_base.progress import CancelToken, Progress

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

log = logging.getLogger(__name__)



class Resync(Exception):
    """The device is not where the host thought (a lost chunk): resume where it says."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class Target(Protocol):
    """Where an upload writes: builds each chunk's request and knows how to resume."""

    @property
    def label(self) -> str: ...

    first_chunk_extra_s: float
    """Extra time the first chunk may take (an image slot is erased on the first chunk)."""
    chunk_extra_s: float
    """Extra time any chunk may take (erasing the next flash sector on the way)."""

    def request(self, off: int, data: bytes, total: int) -> Any: ...

    def resume_offset(self, session: DeviceSession, acknowledged: int, total: int) -> int: ...

    def refused(self, exc: SMPErrorResponse, off: int, total: int) -> Exception: ...


@dataclass
class FileTarget:
    name: str
    first_chunk_extra_s: float = 0.0
    chunk_extra_s: float = 0.0

    @property
    def label(self) -> str:
        return self.name

    def request(self, off: int, data: bytes, total: int) -> Any:
        return fsreq.FileUpload(name=self.name, off=off, data=data,
                                len=total if off == 0 else None)

    def resume_offset(self, session: DeviceSession, acknowledged: int, total: int) -> int:
        """The stored length, if the device tells (nothing acknowledged: start over)."""
        if acknowledged == 0:
            return 0
        try:
            status = session.request(fsreq.FileStatus(name=self.name), session.timeout_s,
                                     retries=2)
            stored = int(status.len)
        except DeviceError:
            return acknowledged
        return stored if 0 < stored <= total else 0

    def refused(self, exc: SMPErrorResponse, off: int, total: int) -> Exception:
        return upload_error(exc, self.name, off, total)


def upload_error(exc: SMPErrorResponse, dest: str, off: int, total: int) -> DeviceError:
    """The device refused a chunk: say why in the user's terms."""
    fs = smpfs.FS_MGMT_ERR
    where = f"upload to {dest} failed at {off}/{total} B"
    if exc.group == 8 and exc.rc in (int(fs.FILE_WRITE_FAILED), int(fs.FILE_OPEN_FAILED)):
        return DeviceError(f"{where}: the device could not store the file ({exc.message})",
                           "its storage may be full: delete old files on the board (or "
                           "erase it) and flash again; the running model is unchanged")
    if exc.group == 8 and exc.rc == int(fs.MOUNT_POINT_NOT_FOUND):
        return DeviceError(f"{where}: the device has no file system at that path",
                           "pass --dest with a path on the board's file system, e.g. /lfs/...")
    if exc.group == 8 and exc.rc == int(fs.READ_ONLY_FILESYSTEM):
        return DeviceError(f"{where}: the device's file system is read-only")
    return DeviceError(f"{where}: {exc.message}",
                       exc.hint or "retry; if it keeps failing, replug the board")


@dataclass
class ImageTarget:
    sha256: bytes
    image: int = 0
    first_chunk_extra_s: float = 10.0
    chunk_extra_s: float = 3.0
    """img-mgmt erases the slot progressively: a chunk that starts a sector waits for it."""

    @property
    def label(self) -> str:
        return f"image {self.image}"

    def request(self, off: int, data: bytes, total: int) -> Any:
        if off == 0:
            return imgreq.ImageUploadWrite(off=0, data=data, image=self.image, len=total,
                                           sha=self.sha256, upgrade=False)
        return imgreq.ImageUploadWrite(off=off, data=data)

    def resume_offset(self, session: DeviceSession, acknowledged: int, total: int) -> int:
        # img-mgmt answers a chunk at the wrong offset with the offset it really has
        return acknowledged

    def refused(self, exc: SMPErrorResponse, off: int, total: int) -> Exception:
        return DeviceError(f"image upload refused at {off}/{total} B: {exc.message}",
                           exc.hint or "check that the image fits the slot and is for this "
                           "board")


@dataclass
class Outcome:
    retries: int
    last: Any
    """The device's answer to the last chunk (an image's ``match`` is in it)."""


def _chunk_timeout(session: DeviceSession, room: int, window: int) -> float:
    """The session's base plus the chunks' time on a slow link (10 bits/B, base64 ×1.4)."""
    baud = getattr(session, "baudrate", 115200) or 115200
    return float(session.timeout_s) + 2.0 * (room * window * 1.4 * 10.0 / baud)


def windowed_upload(session: DeviceSession, data: bytes, target: Target, *,
                    progress: Progress | None = None, cancel: CancelToken | None = None,
                    max_retries: int = 5, window: int | None = None,
                    timeout_scale: float = 1.0) -> Outcome:
    """Upload ``data`` to ``target``; raise DeviceError (with what to do) when it cannot."""
    total = len(data)
    plan = session.frame_plan()  # the session's plan: a shrink here serves later uploads too
    off, retries, budget = 0, 0, max_retries
    stalled_early = False
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"upload to {target.label} cancelled at {off}/{total} B")
        # a caller's window caps this upload only, never the session's plan
        in_flight = plan.window if window is None else max(1, min(plan.window, window))
        transfer = _Pass(session, data, target, off, in_flight, progress, cancel,
                         timeout_scale)
        try:
            last = session.run_exclusive(transfer.run, transfer.overall_timeout())
            return Outcome(retries, last)
        except DisconnectedError:
            raise
        except Resync as exc:
            reason = str(exc)
            if exc.offset is not None and 0 <= exc.offset <= total:
                retries += 1  # the device said where it is: no need to ask
                off = exc.offset
                log.info("upload %s: resuming at %d (%s)", target.label, off, reason)
                if retries > budget:
                    raise DeviceError(f"upload to {target.label} kept losing its place at "
                                      f"{off}/{total} B", stall_hint(session)) from None
                continue
        except TimeoutError:
            reason = "no answer"
            # One lost frame (noise, a busy moment) is retried as it was. A device that drops
            # bursts this big stalls within the first window of every pass — at the same
            # place, or a chunk further when the first frame in flight got through and the
            # second was dropped (a receive pool that overruns): two such passes in a row
            # shrink the bursts. A pass that got further before it stalled lost one frame.
            early = transfer.off - off < in_flight * transfer.room
            if early and stalled_early and plan.shrink(
                    f"frames unanswered at the start of two passes in a row ({transfer.off} B)"):
                session.apply_plan()  # smaller bursts fix a device that drops big ones
                budget += 1
            stalled_early = early
        except SMPErrorResponse as exc:
            raise target.refused(exc, transfer.off, total) from exc
        retries += 1
        if retries > budget:
            raise DeviceError(f"upload to {target.label} failed at {transfer.off}/{total} B "
                              f"after {max_retries} retries ({reason})", stall_hint(session))
        off = target.resume_offset(session, transfer.off, total)
        log.info("upload %s: resuming at %d after %s", target.label, off, reason)


def stall_hint(session: DeviceSession) -> str:
    if getattr(session, "answered", False):
        return ("the device answered smaller requests, so the link works: it stopped "
                "taking chunks (busy, or out of buffers); retry with --mtu 128 --window 1")
    return "check the cable and the baud rate; replug the board"


class _Pass:
    """One pass of chunks from ``off`` with up to ``window`` requests in flight."""

    def __init__(self, session: DeviceSession, data: bytes, target: Target, off: int, window: int,
                 progress: Progress | None, cancel: CancelToken | None,
                 timeout_scale: float) -> None:
        self.session = session
        self.data = data
        self.target = target
        self.off = off
        self.window = window
        self.progress = progress
        self.cancel = cancel
        self.room = self._room(len(data))
        if self.room <= 0:
            raise DeviceError(f"the device's SMP buffer is too small to upload to "
                              f"{target.label}", "check its MCUmgr buffer configuration")
        self.chunk_timeout = (_chunk_timeout(session, self.room, window)
                              + target.chunk_extra_s) * timeout_scale
        self.first_extra = target.first_chunk_extra_s * timeout_scale

    def _room(self, off: int) -> int:
        empty = self.target.request(off, b"", len(self.data))
        return int(self.session.smp_client.get_max_cbor_and_data_size(empty)[1])

    def overall_timeout(self) -> float:
        chunks = (len(self.data) - self.off) // self.room + 2
        return self.chunk_timeout * (chunks + self.window) + self.first_extra + 5.0

    async def run(self, io: Any) -> Any:
        total = len(self.data)
        inflight: deque[tuple[Any, int]] = deque()
        next_off = self.off
        need_first = True  # an empty file still takes one request
        last = None
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled(f"upload to {self.target.label} cancelled at "
                                f"{self.off}/{total} B")
            while len(inflight) < self.window and (next_off < total or need_first):
                room = self._room(next_off)
                request = self.target.request(next_off, self.data[next_off:next_off + room],
                                              total)
                await io.send(request)
                next_off += len(request.data)
                inflight.append((request, next_off))
                need_first = False
            if not inflight:
                return last
            request, expected = inflight.popleft()
            wait = self.chunk_timeout + (self.first_extra if request.off == 0 else 0.0)
            response = await io.receive(request, wait)
            if error(response):
                failure = SMPErrorResponse(request, response)
                if failure.rc == int(smpfs.FS_MGMT_ERR.FILE_OFFSET_NOT_VALID) and \
                        failure.group in (None, 8):
                    expected_off = getattr(response, "extra", {}).get("len")
                    raise Resync("the device expected another offset",
                                 expected_off if isinstance(expected_off, int) else None)
                raise failure
            new_off = int(response.off) if response.off is not None else -1
            if new_off < 0 or new_off > total:
                raise DeviceError(f"the device reported offset {response.off} for a "
                                  f"{total} B upload")
            self.off, last = new_off, response
            if new_off != expected:  # the device is elsewhere: drop what is in flight
                inflight.clear()
                next_off = new_off
            if self.progress:
                self.progress(new_off / total if total else 1.0,
                              f"{new_off}/{total} B to {self.target.label}")
