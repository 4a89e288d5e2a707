"""The virtual board's flash: a file system partition, two MCUboot image slots, the
model region and a small settings record, kept in one directory.

Layout of the state directory (``--state DIR``; a temporary one when not given)::

    fs/<path>          files of the board's file system, e.g. fs/lfs/model.tflite
    slots/slot0.bin    image slot contents that were uploaded (slot 0 = running image)
    model_region.bin   the model the runtime runs (copied there by load-model)
    state.json         image slot flags, the loaded model's path/sha256/labels, boot count

Only the thread that serves SMP requests writes here; ``state.json`` is replaced
atomically so a killed simulator never leaves half a record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

log = logging.getLogger(__name__)

MOUNT_POINT = "/lfs"
STATE_VERSION = 1


class FsPathError(ValueError):
    """A file name the board's file system cannot have."""

    def __init__(self, message: str, mount: bool = False) -> None:
        super().__init__(message)
        self.mount = mount


class FlashStore:
    def __init__(self, state_dir: str | os.PathLike[str] | None, storage_size: int) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tinyops-sim-")
            state_dir = self._tmp.name
        self.root = Path(state_dir).expanduser()
        if self.root.exists() and not self.root.is_dir():
            from device_drivers.errors import InputError

            raise InputError(f"--state {self.root} is a file, not a directory",
                             "give a directory path (it is created if missing)")
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "fs" / MOUNT_POINT.strip("/")).mkdir(parents=True, exist_ok=True)
        (self.root / "slots").mkdir(exist_ok=True)
        self.storage_size = storage_size
        self.persistent = self._tmp is None
        self.state: dict[str, Any] = self._load_state()

    # ---- settings record -------------------------------------------------------------
    def _load_state(self) -> dict[str, Any]:
        path = self.root / "state.json"
        try:
            data = json.loads(path.read_text())
            if isinstance(data, dict) and data.get("version") == STATE_VERSION:
                return data
            log.warning("ignoring %s: unknown format", path)
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", path, exc)
        return {"version": STATE_VERSION}

    def save(self) -> None:
        path = self.root / "state.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=1, sort_keys=True))
        os.replace(tmp, path)

    # ---- file system -------------------------------------------------------------------
    def host_path(self, name: str) -> Path:
        """Map a board path (``/lfs/models/a.tflite``) into the state dir, or FsPathError."""
        if not name or "\x00" in name or len(name) > 255 or not name.startswith("/"):
            raise FsPathError(f"invalid file name {name!r}")
        parts = PurePosixPath(name).parts[1:]
        if not parts or any(p in ("", ".", "..") for p in parts):
            raise FsPathError(f"invalid file name {name!r}")
        if "/" + parts[0] != MOUNT_POINT:
            raise FsPathError(f"{name!r} is not under {MOUNT_POINT}", mount=True)
        if len(parts) == 1:
            raise FsPathError(f"{name!r} is the mount point")
        return self.root.joinpath("fs", *parts)

    def used_bytes(self) -> int:
        total = 0
        for dirpath, _dirs, files in os.walk(self.root / "fs"):
            for f in files:
                with contextlib.suppress(OSError):
                    total += (Path(dirpath) / f).stat().st_size
        return total

    def free_bytes(self) -> int:
        return max(0, self.storage_size - self.used_bytes())

    def read_file(self, name: str) -> bytes:
        return self.host_path(name).read_bytes()

    def write_file(self, name: str, data: bytes) -> None:
        path = self.host_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    # ---- image slots -------------------------------------------------------------------
    def slot_path(self, slot: int) -> Path:
        return self.root / "slots" / f"slot{slot}.bin"

    def swap_slots(self) -> None:
        a, b = self.slot_path(0), self.slot_path(1)
        tmp = self.root / "slots" / "swap.tmp"
        if a.exists():
            os.replace(a, tmp)
        if b.exists():
            os.replace(b, a)
        if tmp.exists():
            os.replace(tmp, b)

    # ---- model region ------------------------------------------------------------------
    @property
    def model_region(self) -> Path:
        return self.root / "model_region.bin"

    def write_model_region(self, data: bytes) -> None:
        tmp = self.model_region.with_suffix(".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, self.model_region)

    def read_model_region(self) -> bytes | None:
        try:
            return self.model_region.read_bytes()
        except OSError:
            return None

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
