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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from smpclient.requests import file_management as fsreq

from device_drivers.errors import Cancelled, DeviceError, DisconnectedError, VerifyError

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

    @property
    def throughput_bps(self) -> float:
        return self.size / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def verified(self) -> bool:
        return self.sha256 == self.device_sha256


def _scaled_timeout(session: Any, chunk: int) -> float:
    """Per-chunk timeout: the session's base plus the chunk's time on a slow link (10 bits/B)."""
    baud = getattr(getattr(session, "_transport", None), "_baudrate", 115200) or 115200
    return float(session.timeout_s) + 2.0 * (chunk * 1.4 * 10.0 / baud)


def upload_file(session: Any, data: bytes, dest: str, *, progress: Progress | None = None,
                cancel: CancelToken | None = None, max_retries: int = 5,
                verify: bool = True) -> UploadResult:
    """Upload ``data`` to ``dest`` on the device and verify it there."""
    started = time.monotonic()
    client = session.smp_client
    total = len(data)
    off = 0
    retries = 0
    first = True
    if progress:
        progress(0.0, f"uploading {total} B to {dest}")
    while first or off < total:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"upload to {dest} cancelled at {off}/{total} B")
        length = total if off == 0 else None
        # smpclient sizes the chunk so the whole frame fills the device's SMP buffer.
        _, room = client.get_max_cbor_and_data_size(
            fsreq.FileUpload(name=dest, off=off, data=b"", len=length))
        if room <= 0:
            raise DeviceError(f"the device's SMP buffer is too small to upload to {dest}")
        request = fsreq.FileUpload(name=dest, off=off, data=data[off:off + room], len=length)
        try:
            response = session.request(request, _scaled_timeout(session, len(request.data)))
        except DisconnectedError:
            raise
        except DeviceError as exc:
            if getattr(exc, "rc", None) is not None or retries >= max_retries:
                raise DeviceError(f"upload to {dest} failed at {off}/{total} B: {exc.message}",
                                  exc.hint or "retry; if it keeps failing, replug the board") \
                    from exc
            retries += 1
            off = _resume_offset(session, dest, off, total)
            log.info("upload %s: resuming at %d after %s", dest, off, exc.message)
            first = off == 0
            continue
        first = False
        new_off = int(response.off)
        if new_off < 0 or new_off > total:
            raise DeviceError(f"the device reported offset {new_off} for a {total} B file")
        off = new_off
        if progress:
            progress(off / total if total else 1.0, f"{off}/{total} B")
    if not verify:
        digest = hashlib.sha256(data).hexdigest()
        return UploadResult(dest, total, digest, "", "none", time.monotonic() - started, retries)
    local, remote, method = verify_file(session, dest, data)
    result = UploadResult(dest, total, local, remote, method, time.monotonic() - started, retries)
    if not result.verified:
        raise VerifyError(
            f"verify failed: the device stored {dest} with {method} {remote[:16]}…, "
            f"expected {local[:16]}…",
            "the transfer was corrupted; flash again (the previous model is still loaded)",
        )
    if progress:
        progress(1.0, f"verified by the device ({method})")
    return result


def _resume_offset(session: Any, dest: str, sent: int, total: int) -> int:
    """Where to continue after a lost answer: the stored length, if the device tells."""
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
    from device_drivers.link.session import SMPErrorResponse

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
