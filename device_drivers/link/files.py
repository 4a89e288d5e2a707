"""File transfer over the MCUmgr file-management group, with device-side verify.

``upload_file`` runs the shared windowed upload (``link.upload``: frames sized to what the
device takes, resumed from the offset it reports, cancellable between chunks), closes the
file on the device, and ends with the device's own sha256 of the stored file compared to
the local one. No match, no success.
"""

from __future__ import annotations

import hashlib
import logging
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from smpclient.requests import file_management as fsreq

from device_drivers.errors import DeviceError, DisconnectedError, VerifyError
from device_drivers.link.smp_errors import SMPErrorResponse
from device_drivers.link.upload import FileTarget, windowed_upload
from tinyops_base.progress import CancelToken, Progress

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

log = logging.getLogger(__name__)


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


def upload_file(session: DeviceSession, data: bytes, dest: str, *, progress: Progress | None = None,
                cancel: CancelToken | None = None, max_retries: int = 5,
                verify: bool = True, window: int | None = None) -> UploadResult:
    """Upload ``data`` to ``dest`` on the device and verify it there.

    Chunks fill the session's frame plan, with up to ``plan.window`` in flight (so the link
    does not idle while the device writes one); ``window`` caps that for this upload only.
    ``progress`` may be called from the session's I/O thread.
    """
    started = time.monotonic()
    total = len(data)
    if progress:
        progress(0.0, f"uploading {total} B to {dest}")
    outcome = windowed_upload(session, data, FileTarget(dest), progress=progress,
                              cancel=cancel, max_retries=max_retries, window=window)
    retries = outcome.retries
    plan = session.frame_plan()
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


def _close_files(session: DeviceSession) -> None:
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


def _hash_timeout(session: DeviceSession, size: int | None) -> float:
    """Hashing reads the whole file on the device: allow ~100 kB/s of flash reads."""
    return float(session.timeout_s) + (size or 0) / 100_000


def device_sha256(session: DeviceSession, path: str, size: int | None = None) -> bytes:
    """The device's own sha256 of ``path`` (fs hash/checksum command)."""
    response = session.request(fsreq.FileHashChecksum(name=path, type="sha256"),
                               _hash_timeout(session, size), retries=2)
    output = response.output
    if not isinstance(output, bytes):
        raise DeviceError("the device returned a non-binary sha256")
    return output


def verify_file(session: DeviceSession, dest: str, data: bytes) -> tuple[str, str, str]:
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


def download_file(session: DeviceSession, path: str) -> bytes:
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
