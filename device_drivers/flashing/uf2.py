"""The uf2 back end: copy a UF2 file to the board's bootloader drive, then verify on the runtime.

Steps: check the UF2 (magics, block numbering, family id against the board); find the
bootloader drive (``--dest``, or a mounted drive with ``INFO_UF2.TXT``; if there is none
and the board runs its application, touch its port at 1200 baud and wait for the drive);
write the file block run by block run with progress; wait for the drive to go away (the
bootloader resets after the last block); then ask the runtime on the serial port for the
loaded model's sha256. It must equal the model's own digest: no verification, no success.

A UF2 bootloader writes each block to flash as it arrives, so a cancel or an unplug in the
middle of the copy leaves the model region half written; the runtime refuses it at boot
by its digest and the next flash restores the board. (Boards that must never lose their
model use the smp back end, whose load-model is atomic.)
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from device_drivers.errors import DeviceError, InputError
from device_drivers.flashing import probe
from device_drivers.flashing.base import (
    Artifact,
    BackendClass,
    CancelToken,
    FlashOptions,
    FlashResult,
    Progress,
    Recogniser,
    Stopwatch,
    board_of,
    check_cancel,
    scaled_timeout,
    sub_progress,
    wait_until,
)
from device_drivers.flashing.registry import register
from tinyops_base.uf2 import BLOCK_SIZE, looks_like_uf2, parse_uf2

log = logging.getLogger(__name__)

INFO_FILE = "INFO_UF2.TXT"
WRITE_RUN = 64 * BLOCK_SIZE
"""Bytes written between progress reports and cancel checks (32 KiB)."""
MSC_BYTES_PER_S = 200_000.0
"""A slow USB mass-storage write speed, for timeouts."""

if TYPE_CHECKING:
    from device_drivers.boards.registry import Board


def default_find_drives() -> list[Path]:
    """Mounted UF2 bootloader drives (the board registry's discovery)."""
    from device_drivers.boards.uf2 import find_uf2_drives

    return [Path(info.path) for info in find_uf2_drives()]


def _board_id(drive: Path) -> str:
    from device_drivers.boards.uf2 import read_info

    info = read_info(drive)
    return (info.board_id if info else None) or ""


def _family(value: object) -> int | None:
    if value is None or value == "":
        return None
    return int(value, 0) if isinstance(value, str) else int(value)  # type: ignore[call-overload]


@register
class Uf2Backend(BackendClass):
    """A UF2 file copied to the board's bootloader drive; the runtime verifies after boot."""

    name: ClassVar[str] = "uf2"
    kinds: ClassVar[Mapping[str, Recogniser | None]] = {
        "uf2": lambda data, _name: looks_like_uf2(data)}
    claims: ClassVar[tuple[str, ...]] = ("uf2",)

    def __init__(self, find_drives: Callable[[], list[Path]] | None = None,
                 drive_timeout_s: float = 15.0) -> None:
        self._find_drives = find_drives or default_find_drives
        self.drive_timeout_s = drive_timeout_s

    def flash(self, artifact: Artifact, port: str | None, options: FlashOptions,
              progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        if artifact.kind != "uf2":
            raise InputError(f"{artifact.name} is not a UF2 file",
                             "export the model for this board first (`tinyops export MODEL "
                             "--format uf2 --board ID`), or pick another --backend")
        image = parse_uf2(artifact.data, artifact.name)
        board = board_of(options)
        want_family = _family(board.uf2_family) if board else None
        if board is not None and want_family is not None \
                and image.family_id not in (None, want_family):
            raise InputError(
                f"{artifact.name} is for UF2 family {image.family_id:#010x}, but "
                f"{board.id} needs {want_family:#010x}",
                "export the model again for this board (--board)")
        expected = artifact.expected_model_sha256
        if expected is None:
            raise InputError(
                f"cannot verify {artifact.name}: the digest of the model inside is unknown",
                "flash the .tflite with --backend uf2 (TinyOps builds the UF2), or keep the "
                "model's .card.json next to the UF2")
        if not port:
            raise InputError("the uf2 back end needs the board's serial port to verify",
                             "pass --port (the port the runtime uses after the reset)")
        previous = probe.previous_model(port)

        progress(0.02, "looking for the UF2 bootloader drive")
        drive = self._drive(options, port, cancel, board)
        board_id = _board_id(drive) or "unknown board id"
        log.info("%s: UF2 drive %s (%s)", port, drive, board_id)

        target = drive / (Path(artifact.name).stem + ".uf2")
        self._copy(artifact.data, target, sub_progress(progress, 0.05, 0.75), cancel,
                   options.timeout_scale)

        progress(0.78, "waiting for the board to reset")
        gone = wait_until(lambda: not (drive / INFO_FILE).exists(),
                          options.reboot_timeout_s * options.timeout_scale, cancel,
                          "waiting for the board to reset")
        if not gone:
            raise DeviceError(f"the bootloader drive {drive} is still there after the copy",
                              "the bootloader rejected the file (wrong family or address?); "
                              "press reset and check INFO_UF2.TXT")
        progress(0.85, "waiting for the runtime to answer")
        info_after = probe.wait_for_runtime(port, options.reboot_timeout_s * options.timeout_scale,
                                            cancel, want_sha256=expected)
        device_sha = bytes(info_after.sha256 or b"").hex()
        progress(1.0, "verified: the runtime reports the model's sha256")
        return FlashResult(
            ok=True, backend=self.name, port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=artifact.size, duration_s=clock.elapsed,
            digest_algo="sha256", local_digest=expected, device_digest=device_sha,
            verified=device_sha == expected, dest=str(target),
            board=(board.id if board else None) or info_after.board, previous_sha256=previous,
            notes=[f"UF2 drive {drive} ({board_id})"])

    # ------------------------------------------------------------ steps
    def _drive(self, options: FlashOptions, port: str, cancel: CancelToken | None,
               board: Board | None) -> Path:
        if options.dest:
            drive = Path(options.dest)
            if not (drive / INFO_FILE).is_file():
                raise InputError(f"{drive} is not a UF2 bootloader drive (no {INFO_FILE})",
                                 "double-tap reset on the board and pass the drive it mounts")
            return drive
        drives = self._matching(board)
        if not drives:
            log.info("%s: no UF2 drive; touching the port at 1200 baud", port)
            probe.touch_1200bps(port)
            drives = wait_until(lambda: self._matching(board), self.drive_timeout_s, cancel,
                                "waiting for the bootloader drive") or []
        if not drives:
            raise DeviceError("no UF2 bootloader drive appeared",
                              "double-tap the board's reset button, wait for its drive, and "
                              "pass it with --dest")
        if len(drives) > 1:
            raise InputError(f"{len(drives)} UF2 drives are mounted: "
                             f"{', '.join(str(d) for d in drives)}",
                             "pass the one to use with --dest")
        return drives[0]

    def _matching(self, board: Board | None) -> list[Path]:
        import fnmatch

        drives = self._find_drives()
        patterns = list(board.uf2_board_ids) if board else []
        if not patterns:
            return drives
        out = []
        for drive in drives:
            if any(fnmatch.fnmatchcase(_board_id(drive), p) for p in patterns):
                out.append(drive)
        return out

    def _copy(self, data: bytes, target: Path, progress: Progress,
              cancel: CancelToken | None, scale: float) -> None:
        deadline = time.monotonic() + scaled_timeout(len(data), MSC_BYTES_PER_S, 10.0, scale)
        total = len(data)
        written = 0
        check_cancel(cancel, "UF2 copy")
        try:
            with open(target, "wb", buffering=0) as handle:
                for off in range(0, total, WRITE_RUN):
                    check_cancel(cancel, f"UF2 copy at {off}/{total} B")
                    handle.write(data[off:off + WRITE_RUN])
                    written = off + min(WRITE_RUN, total - off)
                    progress(written / total, f"{written}/{total} B to {target.parent}")
                    if time.monotonic() > deadline:
                        raise DeviceError(f"writing {target} is too slow",
                                          "use another USB port or cable")
                os.fsync(handle.fileno())
        except OSError as exc:
            if written == total:  # the bootloader reset right after the last block: fine
                log.info("UF2 drive went away while closing %s: %s", target, exc)
                return
            raise DeviceError(f"cannot write {target}: {exc.strerror or exc}",
                              "the drive went away or is read-only; double-tap reset and "
                              "try again") from exc
