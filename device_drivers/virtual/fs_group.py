"""File management (group 8): upload with offsets, download, status, hash/checksum, close.

Paths live under the ``/lfs`` mount point; missing directories are created on upload.
Hashes are computed from what is stored, so a host can verify an upload end to end.
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Any

from smp import file_management as fsm

from device_drivers.virtual.flash import FlashStore, FsPathError
from device_drivers.virtual.smp_server import Dispatcher, Fail

E = fsm.FS_MGMT_ERR
GROUP = 8
DOWNLOAD_OVERHEAD = 96
"""Bytes of a download reply that are not file data (header, CBOR keys, offsets)."""


def _fail(code: E) -> Fail:
    return Fail(code, GROUP, code.name, fsm.FileSystemManagementErrorV2)


class FsGroup:
    def __init__(self, flash: FlashStore, buf_size: int) -> None:
        self.flash = flash
        self.chunk = buf_size - 4 - DOWNLOAD_OVERHEAD
        self._uploads: dict[str, int] = {}
        """Open upload handles: board path → expected total length."""

    def register(self, d: Dispatcher) -> None:
        d.error_classes[GROUP] = fsm.FileSystemManagementErrorV2
        d.add(fsm.FileUploadRequest, self.upload)
        d.add(fsm.FileDownloadRequest, self.download)
        d.add(fsm.FileStatusRequest, self.status)
        d.add(fsm.FileHashChecksumRequest, self.hash)
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
        path = self._path(name)
        if path.is_dir():
            raise _fail(E.FILE_IS_DIRECTORY)
        if not path.is_file():
            raise _fail(E.FILE_NOT_FOUND)
        return path

    def upload(self, req: fsm.FileUploadRequest) -> fsm.FileUploadResponse:
        path = self._path(req.name)
        if path.is_dir():
            raise _fail(E.FILE_IS_DIRECTORY)
        size = path.stat().st_size if path.is_file() else 0
        if req.off == 0:
            if req.len is None:
                raise Fail(3, reason="len is required at offset 0")  # MGMT_ERR.EINVAL
            free = self.flash.free_bytes() + size
            if req.len > free:
                raise _fail(E.FILE_WRITE_FAILED)  # no space left on the partition
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(b"")  # a restarted upload starts from an empty file
            except OSError:
                raise _fail(E.FILE_OPEN_FAILED) from None
            self._uploads[req.name] = req.len
            size = 0
        elif req.off != size:
            raise _fail(E.FILE_OFFSET_NOT_VALID)
        total = self._uploads.get(req.name)
        if total is not None and req.off + len(req.data) > total:
            raise _fail(E.FILE_WRITE_FAILED)
        if total is None and len(req.data) > self.flash.free_bytes():
            raise _fail(E.FILE_WRITE_FAILED)
        try:
            with path.open("ab") as f:
                f.write(req.data)
        except OSError:
            raise _fail(E.FILE_WRITE_FAILED) from None
        off = req.off + len(req.data)
        if total is not None and off >= total:
            self._uploads.pop(req.name, None)  # complete: the handle closes
        return fsm.FileUploadResponse(off=off)

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

    def hash(self, req: fsm.FileHashChecksumRequest) -> fsm.FileHashChecksumResponse:
        kind = req.type or "sha256"
        if kind not in ("sha256", "crc32"):
            raise _fail(E.CHECKSUM_HASH_NOT_FOUND)
        data = self._existing(req.name).read_bytes()
        off = req.off or 0
        if off > len(data):
            raise _fail(E.FILE_OFFSET_LARGER_THAN_FILE)
        part = data[off: off + req.len] if req.len is not None else data[off:]
        if not part:
            raise _fail(E.FILE_EMPTY)
        output: Any = (hashlib.sha256(part).digest() if kind == "sha256"
                       else zlib.crc32(part) & 0xFFFFFFFF)
        return fsm.FileHashChecksumResponse(type=kind, off=off or None, len=len(part),
                                            output=output)

    def close(self, _req: Any) -> fsm.FileCloseResponse:
        self._uploads.clear()
        return fsm.FileCloseResponse()
