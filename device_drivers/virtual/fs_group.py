"""File management (group 8): upload with offsets, download, status, hash/checksum, close.

Paths live under the ``/lfs`` mount point; missing directories are created on upload.
Hashes are computed from what is stored, so a host can verify an upload end to end.

Answers follow Zephyr 4.4's fs_mgmt (measured on native_sim): an upload's ``len`` is not
a limit (writes past it are accepted); every chunk after the first must come at the
offset the upload reached, else ``FILE_OFFSET_NOT_VALID`` with ``len`` = that offset (0
for another file); a hash without ``type`` is a crc32; a missing file or mount point in
status/hash/download is ``FILE_NOT_FOUND``; version-1 requests get legacy ``rc`` codes.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

from smp import file_management as fsm
from smp.error import MGMT_ERR

from device_drivers.virtual.flash import FlashStore, FsPathError
from device_drivers.virtual.smp_server import Dispatcher, Fail

E = fsm.FS_MGMT_ERR
GROUP = 8
DEFAULT_HASH = "crc32"
"""What Zephyr 4.4 hashes when the request names no type (measured on native_sim)."""


def legacy_rc(rc: int) -> int:
    """Zephyr's ``fs_mgmt_translate_error_code``: the rc a version-1 request gets."""
    if rc in (E.FILE_NOT_FOUND, E.MOUNT_POINT_NOT_FOUND):
        return int(MGMT_ERR.ENOENT)
    if rc in (E.FILE_INVALID_NAME, E.CHECKSUM_HASH_NOT_FOUND):
        return int(MGMT_ERR.EINVAL)
    if rc == E.READ_ONLY_FILESYSTEM:
        return int(MGMT_ERR.EACCESSDENIED)
    return int(MGMT_ERR.EUNKNOWN)


class HashRequest(fsm.FileHashChecksumRequest):
    """The hash request with any ``type`` string: an unknown one gets Zephyr's own error."""

    type: str | None = None  # type: ignore[assignment]
DOWNLOAD_OVERHEAD = 96
"""Bytes of a download reply that are not file data (header, CBOR keys, offsets)."""


def _fail(code: E) -> Fail:
    return Fail(code, GROUP, code.name, fsm.FileSystemManagementErrorV2)


class FsGroup:
    def __init__(self, flash: FlashStore, buf_size: int, offset_error_len: bool = True) -> None:
        self.flash = flash
        self.offset_error_len = offset_error_len
        self.chunk = buf_size - 4 - DOWNLOAD_OVERHEAD
        self._upload_name: str | None = None
        self._upload_off = 0
        """The upload in progress: its file and the offset the next chunk must have."""

    def register(self, d: Dispatcher) -> None:
        d.error_classes[GROUP] = fsm.FileSystemManagementErrorV2
        d.names[GROUP] = "fs mgmt"
        d.legacy_rc[GROUP] = legacy_rc
        d.add(fsm.FileUploadRequest, self.upload)
        d.add(fsm.FileDownloadRequest, self.download)
        d.add(fsm.FileStatusRequest, self.status)
        d.add(HashRequest, self.hash)
        d.add(fsm.SupportedFileHashChecksumTypesRequest, lambda _r: fsm.
              SupportedFileHashChecksumTypesResponse(types={
                  "crc32": fsm.HashChecksumType(format=fsm.HashChecksumFormat.NUMERICAL, size=4),
                  "sha256": fsm.HashChecksumType(format=fsm.HashChecksumFormat.BYTE_ARRAY,
                                                 size=32)}))
        d.add(fsm.FileCloseRequest, self.close)

    def _path(self, name: str) -> Path:
        try:
            return self.flash.host_path(name)
        except FsPathError as exc:
            raise _fail(E.MOUNT_POINT_NOT_FOUND if exc.mount else E.FILE_INVALID_NAME) from None

    def _existing(self, name: str) -> Path:
        try:
            path = self.flash.host_path(name)
        except FsPathError as exc:  # Zephyr's fs_stat: no such mount point is no such file
            raise _fail(E.FILE_NOT_FOUND if exc.mount else E.FILE_INVALID_NAME) from None
        if path.is_dir():
            raise _fail(E.FILE_IS_DIRECTORY)
        if not path.is_file():
            raise _fail(E.FILE_NOT_FOUND)
        return path

    def upload(self, req: fsm.FileUploadRequest) -> fsm.FileUploadResponse:
        path = self._path(req.name)
        if path.is_dir():
            raise _fail(E.FILE_IS_DIRECTORY)
        if req.off == 0:
            if req.len is None:
                raise Fail(MGMT_ERR.EINVAL, reason="len is required at offset 0")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")  # a restarted upload starts from an empty file
            except OSError:
                raise _fail(E.FILE_OPEN_FAILED) from None
            self._upload_name, self._upload_off = req.name, 0
        elif req.name != self._upload_name or req.off != self._upload_off:
            expected = self._upload_off if req.name == self._upload_name else 0
            raise Fail(E.FILE_OFFSET_NOT_VALID, GROUP, E.FILE_OFFSET_NOT_VALID.name,
                       fsm.FileSystemManagementErrorV2,
                       extra={"len": expected} if self.offset_error_len else None)
        if len(req.data) > self.flash.free_bytes():
            raise _fail(E.FILE_WRITE_FAILED)  # the partition is full
        try:
            with path.open("ab") as f:
                f.write(req.data)
        except OSError:
            raise _fail(E.FILE_WRITE_FAILED) from None
        self._upload_off = req.off + len(req.data)
        return fsm.FileUploadResponse(off=self._upload_off)

    def download(self, req: fsm.FileDownloadRequest) -> fsm.FileDownloadResponse:
        path = self._existing(req.name)
        size = path.stat().st_size
        if req.off > size:
            raise _fail(E.FILE_OFFSET_LARGER_THAN_FILE)
        with path.open("rb") as f:
            f.seek(req.off)
            data = f.read(self.chunk)
        if req.off == 0:
            return fsm.FileDownloadResponse(off=req.off, data=data, len=size)
        return fsm.FileDownloadResponse(off=req.off, data=data)

    def status(self, req: fsm.FileStatusRequest) -> fsm.FileStatusResponse:
        return fsm.FileStatusResponse(len=self._existing(req.name).stat().st_size)

    def hash(self, req: HashRequest) -> fsm.FileHashChecksumResponse:
        kind = req.type or DEFAULT_HASH
        if kind not in ("sha256", "crc32"):
            raise _fail(E.CHECKSUM_HASH_NOT_FOUND)
        if req.len == 0:
            raise Fail(MGMT_ERR.EINVAL, reason="len 0")
        data = self._existing(req.name).read_bytes()
        if not data:
            raise _fail(E.FILE_EMPTY)
        off = req.off or 0
        if off >= len(data):
            raise _fail(E.FILE_OFFSET_LARGER_THAN_FILE)
        part = data[off: off + req.len] if req.len is not None else data[off:]
        output: Any = (hashlib.sha256(part).digest() if kind == "sha256"
                       else zlib.crc32(part) & 0xFFFFFFFF)
        return fsm.FileHashChecksumResponse(type=kind, off=off or None, len=len(part),
                                            output=output)

    def close(self, _req: Any) -> fsm.FileCloseResponse:
        self._upload_name, self._upload_off = None, 0
        return fsm.FileCloseResponse()
