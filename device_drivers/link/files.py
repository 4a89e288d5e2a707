"""File transfer over the MCUmgr file-management group, with resume and device-side verify.

``upload_file`` sends chunks as large as the device's SMP buffer allows (smpclient sizes
them from the MCUmgr params), resumes from the offset the device reports after a lost
frame or a slow answer, checks the cancel token between chunks, and ends with the
device's own sha256 of the stored file compared to the local one. No match, no success.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from smp import file_management as smpfs
from smpclient.generics import error
from smpclient.requests import file_management as fsreq

from device_drivers.errors import Cancelled, DeviceError, DisconnectedError, VerifyError
from device_drivers.link.session import SMPErrorResponse

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]


class CancelToken(Protocol):
    def is_set(self) -> bool: ...


@dataclass(frozen=True)
class UploadResult:
    dest: str
    size: int
    sha256: str
    device_sha256: str
    verify_method: str
    """``sha256`` (device hash), ``crc32`` (device checksum) or ``readback`` (download)."""
    duration_s: float
    retries: int
    frames: str = ""
    """The frame size and window used, and how they were found (``FramePlan.describe``)."""
    notes: tuple[str, ...] = ()
    """What the link adapted to (smaller frames or window after drops)."""

    @property
    def throughput_bps(self) -> float:
        return self.size / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def verified(self) -> bool:
        return self.sha256 == self.device_sha256


def _scaled_timeout(session: Any, chunk: int) -> float:
    """Per-chunk timeout: the session's base plus the chunk's time on a slow link (10 bits/B)."""
    baud = getattr(session, "baudrate", 115200) or 115200
    return float(session.timeout_s) + 2.0 * (chunk * 1.4 * 10.0 / baud)


def upload_file(session: Any, data: bytes, dest: str, *, progress: Progress | None = None,
                cancel: CancelToken | None = None, max_retries: int = 5,
                verify: bool = True, window: int | None = None) -> UploadResult:
    """Upload ``data`` to ``dest`` on the device and verify it there.

    Up to ``window`` chunks are in flight at once (default: 2 when the device reports at
    least two SMP buffers), so the link does not idle while the device writes a chunk.
    ``progress`` may be called from the session's I/O thread.
    """
    started = time.monotonic()
    total = len(data)
    off = 0
    retries = 0
    plan = session.frame_plan()
    budget = max_retries
    if window is not None:
        plan.window = max(1, min(plan.window, window))
    if progress:
        progress(0.0, f"uploading {total} B to {dest}")
    while True:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"upload to {dest} cancelled at {off}/{total} B")
        transfer = _Transfer(session, data, dest, off, plan.window, progress, cancel)
        try:
            off = session.run_exclusive(transfer.run, transfer.overall_timeout())
            break
        except DisconnectedError:
            raise
        except _Resync as exc:
            reason = str(exc)
        except TimeoutError:
            reason = "no answer"
            if plan.shrink(f"frames unanswered at {transfer.off} B"):
                session.apply_plan()  # smaller bursts fix a device that drops big ones
                budget += 1
        except SMPErrorResponse as exc:
            raise _upload_error(exc, dest, transfer.off, total) from exc
        retries += 1
        if retries > budget:
            raise DeviceError(f"upload to {dest} failed at {transfer.off}/{total} B after "
                              f"{max_retries} retries ({reason})", _stall_hint(session))
        off = _resume_offset(session, dest, transfer.off, total)
        log.info("upload %s: resuming at %d after %s", dest, off, reason)
    if not verify:
        digest = hashlib.sha256(data).hexdigest()
        return UploadResult(dest, total, digest, "", "none", time.monotonic() - started, retries,
                            plan.describe(), tuple(plan.notes))
    _close_files(session)
    local, remote, method = verify_file(session, dest, data)
    result = UploadResult(dest, total, local, remote, method, time.monotonic() - started, retries,
                          plan.describe(), tuple(plan.notes))
    if not result.verified:
        raise VerifyError(
            f"verify failed: the device stored {dest} with {method} {remote[:16]}…, "
            f"expected {local[:16]}…",
            "the transfer was corrupted; flash again (the previous model is still loaded)",
        )
    if progress:
        progress(1.0, f"verified by the device ({method})")
    return result


class _Resync(Exception):
    """The device is not where the host thought (a lost chunk): ask it and resume."""


class _Transfer:
    """One pass of chunks from ``off`` with up to ``window`` requests in flight."""

    def __init__(self, session: Any, data: bytes, dest: str, off: int, window: int,
                 progress: Progress | None, cancel: CancelToken | None) -> None:
        self.session = session
        self.data = data
        self.dest = dest
        self.off = off
        self.window = window
        self.progress = progress
        self.cancel = cancel
        _, self.room = session.smp_client.get_max_cbor_and_data_size(
            fsreq.FileUpload(name=dest, off=len(data), data=b"", len=len(data)))
        if self.room <= 0:
            raise DeviceError(f"the device's SMP buffer is too small to upload to {dest}")
        self.chunk_timeout = _scaled_timeout(session, self.room * window)

    def overall_timeout(self) -> float:
        chunks = (len(self.data) - self.off) // self.room + 2
        return self.chunk_timeout * (chunks + self.window) + 5.0

    def _request(self, off: int) -> Any:
        length = len(self.data) if off == 0 else None
        # smpclient sizes the chunk so the whole frame fills the device's SMP buffer.
        _, room = self.session.smp_client.get_max_cbor_and_data_size(
            fsreq.FileUpload(name=self.dest, off=off, data=b"", len=length))
        return fsreq.FileUpload(name=self.dest, off=off, data=self.data[off:off + room],
                                len=length)

    async def run(self, io: Any) -> int:
        total = len(self.data)
        inflight: deque[tuple[Any, int]] = deque()
        next_off = self.off
        need_first = True  # an empty file still takes one request
        while True:
            if self.cancel is not None and self.cancel.is_set():
                raise Cancelled(f"upload to {self.dest} cancelled at {self.off}/{total} B")
            while len(inflight) < self.window and (next_off < total or need_first):
                request = self._request(next_off)
                await io.send(request)
                next_off += len(request.data)
                inflight.append((request, next_off))
                need_first = False
            if not inflight:
                return self.off
            request, expected = inflight.popleft()
            response = await io.receive(request, self.chunk_timeout)
            if error(response):
                failure = SMPErrorResponse(request, response)
                if failure.rc == int(smpfs.FS_MGMT_ERR.FILE_OFFSET_NOT_VALID):
                    raise _Resync("the device expected another offset")
                raise failure
            new_off = int(response.off)
            if new_off < 0 or new_off > total:
                raise DeviceError(f"the device reported offset {new_off} for a {total} B file")
            self.off = new_off
            if new_off != expected:  # the device is elsewhere: drop what is in flight
                inflight.clear()
                next_off = new_off
            if self.progress:
                self.progress(new_off / total if total else 1.0, f"{new_off}/{total} B")


def _close_files(session: Any) -> None:
    """Have the device close the file it wrote (fs close): Zephyr keeps an upload open
    between chunks, and a hash read through another handle may see the old content."""
    try:
        session.request(fsreq.FileClose(), session.timeout_s, retries=2)
    except DisconnectedError:
        raise
    except SMPErrorResponse as exc:  # older servers: no close command (closed on the last chunk)
        log.debug("fs close not supported: %s", exc.message)
    except DeviceError as exc:  # best effort: the hash that follows decides
        log.info("fs close unanswered: %s", exc.message)


def _stall_hint(session: Any) -> str:
    if getattr(session, "answered", False):
        return ("the device answered smaller requests, so the link works: it stopped "
                "taking chunks (busy, or out of buffers); retry with --mtu 128 --window 1")
    return "check the cable and the baud rate; replug the board"


def _upload_error(exc: SMPErrorResponse, dest: str, off: int, total: int) -> DeviceError:
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


def _resume_offset(session: Any, dest: str, sent: int, total: int) -> int:
    """Where to continue after a lost answer: the stored length, if the device tells."""
    if sent == 0:  # nothing acknowledged: the stored length may be an older file's
        return 0
    try:
        status = session.request(fsreq.FileStatus(name=dest), session.timeout_s, retries=2)
        stored = int(status.len)
    except DeviceError:
        return 0 if sent == 0 else sent
    if 0 < stored <= total:
        return stored
    return 0


def _hash_timeout(session: Any, size: int | None) -> float:
    """Hashing reads the whole file on the device: allow ~100 kB/s of flash reads."""
    return float(session.timeout_s) + (size or 0) / 100_000


def device_sha256(session: Any, path: str, size: int | None = None) -> bytes:
    """The device's own sha256 of ``path`` (fs hash/checksum command)."""
    response = session.request(fsreq.FileHashChecksum(name=path, type="sha256"),
                               _hash_timeout(session, size), retries=2)
    output = response.output
    if not isinstance(output, bytes):
        raise DeviceError("the device returned a non-binary sha256")
    return output


def verify_file(session: Any, dest: str, data: bytes) -> tuple[str, str, str]:
    """(local digest, device digest, method): sha256, else crc32, else read back."""
    local_sha = hashlib.sha256(data).hexdigest()
    try:
        return local_sha, device_sha256(session, dest, len(data)).hex(), "sha256"
    except SMPErrorResponse as exc:
        log.info("device has no sha256 for files (%s); trying crc32", exc.message)
    try:
        response = session.request(fsreq.FileHashChecksum(name=dest, type="crc32"),
                                   _hash_timeout(session, len(data)), retries=2)
        local_crc = f"{zlib.crc32(data) & 0xFFFFFFFF:08x}"
        return local_crc, f"{int(response.output) & 0xFFFFFFFF:08x}", "crc32"
    except SMPErrorResponse as exc:
        log.info("device has no crc32 either (%s); reading the file back", exc.message)
    back = download_file(session, dest)
    return local_sha, hashlib.sha256(back).hexdigest(), "readback"


def download_file(session: Any, path: str) -> bytes:
    out = bytearray()
    total: int | None = None
    while total is None or len(out) < total:
        response = session.request(fsreq.FileDownload(off=len(out), name=path),
                                   session.timeout_s, retries=3)
        if response.len is not None:
            total = int(response.len)
        if not response.data:
            break
        out += response.data
    return bytes(out)
