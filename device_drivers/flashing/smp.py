"""The smp back end: models as files (fs group), firmware as MCUboot images (img group).

Model: upload the file (``link.files.upload_file``), have the device hash what it stored,
then — on the TinyOps runtime — ``load-model`` with the expected sha256 (atomic: the
previous model keeps running unless the new one is verified and allocated; a cancel before
it says so) and read model-info back. A stock SMP server gets the upload and fs hash only.

Firmware (an MCUboot image): checked on the host first (``device_drivers.mcuboot_image``:
header, sizes, TLVs, hash, signature with ``--key``); a bad image never opens the port.
Then MCUboot's mode decides (``device_drivers.flashing.mcuboot``): swap (and an unknown
mode) uploads to the spare slot, marks it for test, resets, waits for the board to answer
with the new image running, then confirms it — an image that does not boot or never
answers stays unconfirmed and MCUboot reverts to the previous firmware; overwrite-only
marks it permanent (no revert exists) and checks what boots; direct-xip and RAM-load boot
the highest version, so an image that is not newer is refused before the upload; a
single-slot MCUboot is refused with the way into serial recovery. In serial recovery
(found, or entered with ``--enter-recovery``) the image goes to slot 0, its hash is
checked, the board is reset and the application must answer with it running.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import posixpath
import struct
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from device_drivers.errors import (
    Cancelled,
    DeviceError,
    DisconnectedError,
    InputError,
    TinyOpsError,
    VerifyError,
)
from device_drivers.flashing import mcuboot
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
    cancelled_before_load,
    check_cancel,
    sub_progress,
)
from device_drivers.flashing.registry import register
from device_drivers.link.options import LinkOptions
from device_drivers.link.session import DeviceSession
from device_drivers.link.upload import ImageTarget, windowed_upload
from device_drivers.mcuboot_image import IMAGE_MAGIC, ImageCheck, check_image

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = "/lfs/model.tflite"
MAX_CHUNK_RETRIES = 8


def is_tflite(data: bytes, name: str = "") -> bool:
    """A TFLite FlatBuffer: the ``TFL3`` file identifier at offset 4."""
    return len(data) >= 8 and data[4:8] == b"TFL3"


def is_mcuboot_image(data: bytes, name: str = "") -> bool:
    """An MCUboot image: its header magic first."""
    return len(data) >= 4 and struct.unpack_from("<I", data)[0] == IMAGE_MAGIC


@register
class SmpBackend(BackendClass):
    """Models and binaries as files (fs group), MCUboot images (img group).

    ``session``: an open ``DeviceSession`` to flash a model or binary through (it stays
    open afterwards); None opens the port. An image flash resets the board, so it always
    opens the port itself.
    """

    name: ClassVar[str] = "smp"
    aliases: ClassVar[tuple[str, ...]] = ("virtual",)
    kinds: ClassVar[Mapping[str, Recogniser | None]] = {
        "model": is_tflite, "mcuboot-image": is_mcuboot_image, "binary": None}
    claims: ClassVar[tuple[str, ...]] = ("mcuboot-image",)

    def __init__(self, session_timeout_s: float = 2.0, *,
                 session: DeviceSession | None = None) -> None:
        self.session_timeout_s = session_timeout_s
        self.session = session

    def flash(self, artifact: Artifact, port: str | None, options: FlashOptions,
              progress: Progress, cancel: CancelToken | None) -> FlashResult:
        if not port:
            raise InputError("the smp back end needs --port", "pass the board's serial port")
        if artifact.kind == "mcuboot-image":
            return self._flash_image(artifact, port, options, progress, cancel)
        if artifact.kind in ("model", "binary"):
            return self._flash_model(artifact, port, options, progress, cancel)
        raise InputError(f"{artifact.name} ({artifact.kind}) cannot go over SMP",
                         "flash a .tflite model or a signed MCUboot image (.signed.bin)")

    def _open(self, port: str, options: FlashOptions
              ) -> contextlib.AbstractContextManager[DeviceSession]:
        if self.session is not None:
            return contextlib.nullcontext(self.session)
        return mcuboot.open_session(port, options.baudrate,
                                    self.session_timeout_s * options.timeout_scale,
                                    link=options.link)

    # ------------------------------------------------------------ model as a file
    def _flash_model(self, artifact: Artifact, port: str, options: FlashOptions,
                     progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        board = board_of(options)
        progress(0.0, f"connecting to {port}")
        with self._open(port, options) as dev:
            info = dev.model_info()
            previous = bytes(info.sha256).hex() if info and info.loaded and info.sha256 else None
            # a board entry has no model path (the schema has none): the device's, else ours
            dest = options.dest or _model_dest(info) or DEFAULT_MODEL_PATH
            try:  # a cancel before load-model leaves the board running what it ran
                check_cancel(cancel, "flash")
                upload = dev.upload_file(artifact.data, dest, cancel=cancel,
                                         progress=sub_progress(progress, 0.02, 0.85))
                if info is not None:
                    check_cancel(cancel, "flash")
            except Cancelled as exc:
                raise cancelled_before_load(exc, port, previous, info is not None) from None
            local = artifact.sha256
            notes = [f"upload verified by the device ({upload.verify_method})",
                     f"{upload.retries} chunk retries"]
            if upload.device_sha256 != upload.sha256:  # files.upload_file raises; belt and braces
                raise VerifyError(f"{port}: the device stored {dest} with a different digest")
            device_digest = upload.device_sha256 if upload.verify_method == "sha256" else None
            if info is None:
                notes.append("no TinyOps runtime (stock SMP server): model stored, not loaded")
                progress(1.0, "verified by the device's file hash")
                return self._result(artifact, port, clock, local, upload.device_sha256, dest,
                                    board, previous, notes, algo=upload.verify_method)
            progress(0.88, "loading the model (the previous one runs until it verifies)")
            loaded = dev.load_model(dest, sha256=bytes.fromhex(local), labels=artifact.labels,
                                    timeout_s=30.0 * options.timeout_scale)
            if bytes(loaded.sha256).hex() != local:
                raise VerifyError(f"{port}: the runtime loaded a model with sha256 "
                                  f"{bytes(loaded.sha256).hex()[:16]}…, expected {local[:16]}…",
                                  "flash again")
            after = dev.model_info()
            running = bytes(after.sha256).hex() if after and after.sha256 else None
            if after is None or not after.loaded or running != local:
                raise VerifyError(f"{port}: model-info reports {running or 'no model'} after "
                                  "load-model", "flash again; check the board's log")
            device_digest = running
            notes.append(f"loaded: arena {loaded.arena_used} B used")
        progress(1.0, "verified: the runtime reports the model's sha256")
        return self._result(artifact, port, clock, local, device_digest, dest, board, previous,
                            notes, runtime_board=after.board)

    def _result(self, artifact: Artifact, port: str, clock: Stopwatch, local: str,
                device: str | None, dest: str, board: Any, previous: str | None,
                notes: list[str], algo: str = "sha256",
                runtime_board: str | None = None) -> FlashResult:
        if algo == "crc32":
            local = f"{_crc32(artifact.data):08x}"
        return FlashResult(
            ok=True, backend=self.name, port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=artifact.size, duration_s=clock.elapsed,
            digest_algo=algo, local_digest=local, device_digest=device,
            verified=device is not None and device == local, dest=dest,
            board=(board.id if board else None) or runtime_board, previous_sha256=previous,
            notes=notes)

    # ------------------------------------------------------------ firmware as an image
    def _flash_image(self, artifact: Artifact, port: str, options: FlashOptions,
                     progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        board = board_of(options)
        # the host check comes first: a bad image never opens the port
        check = check_image(artifact.data, artifact.name, key=options.extra.get("key"))
        want = check.hash
        notes = [f"host check: MCUboot image {check.version}, {check.hash_algo} ok, "
                 f"signature {check.signature}"]
        progress(0.0, f"image {check.version} checked; connecting to {port}")
        timeout = self.session_timeout_s * options.timeout_scale
        with mcuboot.open_session(port, options.baudrate, timeout, link=options.link) as dev:
            slots = mcuboot.list_slots(dev)
            entering = options.extra.get("enter_recovery") and not \
                mcuboot.looks_like_recovery(slots)
            if entering:
                progress(0.01, "resetting into MCUboot serial recovery")
                mcuboot.enter_recovery(dev)
        if entering:
            slots = mcuboot.wait_for_slots(port, options.baudrate, options.reboot_timeout_s
                                           * options.timeout_scale, cancel,
                                           "in MCUboot serial recovery", settle_s=1.0,
                                           link=options.link)
            if not mcuboot.looks_like_recovery(slots):
                raise DeviceError(f"{port}: the board came back in its application, not in "
                                  "MCUboot serial recovery", mcuboot.RECOVERY_HINT)
        with mcuboot.open_session(port, options.baudrate, timeout, link=options.link) as dev:
            info = mcuboot.detect_mode(dev, slots)
            notes.append(f"MCUboot mode: {info.mode} ({info.detail}; from {info.source})")
            if info.mode == mcuboot.RECOVERY:
                return self._flash_recovery(dev, artifact, check, options, progress, cancel,
                                            clock, board, slots, notes)
            mcuboot.refuse_impossible(port, info, check, slots)
            running = mcuboot.active_slot(slots)
            previous = running.hash if running else None
            if previous == want and running is not None and (
                    running.confirmed or info.mode not in mcuboot.TEST_CONFIRM_MODES):
                progress(1.0, "this image already runs")
                return self._image_result(artifact, port, clock, want, previous, board,
                                          previous, [*notes, "already running: nothing to do"])
            check_cancel(cancel, "image upload")
            match = upload_image(dev, artifact.data, sub_progress(progress, 0.02, 0.8), cancel,
                                 options.timeout_scale)
            if match is False:
                raise VerifyError(f"{port}: the device's sha256 of the uploaded image differs",
                                  "the transfer was corrupted; flash again (the running "
                                  "firmware is untouched)")
            slots = mcuboot.list_slots(dev)
            if not any(s.hash == want and not s.active for s in slots):
                raise VerifyError(f"{port}: no spare slot lists image {want[:16]}… after the "
                                  "upload", "flash again")
            if match is True:
                notes.append("the device's sha256 of the upload matched")
            if info.mode in mcuboot.TEST_CONFIRM_MODES:
                progress(0.82, "marking the new image for a test boot")
                mcuboot.set_state(dev, check.digest, confirm=False)
            elif info.mode == "overwrite-only":  # no revert: the copy is for good
                progress(0.82, "marking the new image to be copied into slot 0")
                mcuboot.set_state(dev, check.digest, confirm=True)
            progress(0.85, "resetting into MCUboot")
            mcuboot.reset(dev)
            kind = dev.transport_kind
        booted = self._wait_boot(port, _same_transport(options, kind), cancel)
        if booted != want:
            raise DeviceError(
                f"{port}: MCUboot did not boot the new image (it runs {(booted or '?')[:16]}…)"
                ": the previous firmware runs", "check the image's signature and target board")
        if info.mode not in mcuboot.TEST_CONFIRM_MODES:
            progress(1.0, "verified: MCUboot booted the image")
            return self._image_result(artifact, port, clock, want, booted, board, previous,
                                      [*notes, f"booted ({info.mode}: no test/confirm)"])
        progress(0.95, "the new firmware answers: confirming it")
        with mcuboot.open_session(port, options.baudrate, timeout, link=options.link) as dev:
            slots = mcuboot.set_state(dev, check.digest, confirm=True)
        if not any(s.hash == want and s.confirmed for s in slots):
            raise DeviceError(f"{port}: the device did not confirm the new image",
                              "it will revert at the next reset; flash again")
        progress(1.0, "verified: MCUboot booted the image, the firmware confirmed it")
        return self._image_result(artifact, port, clock, want, booted, board, previous,
                                  [*notes, "tested, booted and confirmed"])

    def _flash_recovery(self, dev: DeviceSession, artifact: Artifact, check: ImageCheck,
                        options: FlashOptions, progress: Progress,
                        cancel: CancelToken | None, clock: Stopwatch, board: Any,
                        slots: list[mcuboot.Slot], notes: list[str]) -> FlashResult:
        """MCUboot serial recovery: upload to image 0 slot 0, check its hash, reset, and
        the application must answer with that image running."""
        port, want = dev.port, check.hash
        previous = mcuboot.slot_hash(slots, 0)
        check_cancel(cancel, "recovery upload")
        progress(0.02, "MCUboot serial recovery: uploading to slot 0")
        # the bootloader erases flash as it writes: its answers take longer
        match = upload_image(dev, artifact.data, sub_progress(progress, 0.02, 0.85), cancel,
                             options.timeout_scale * RECOVERY_TIMEOUT_FACTOR, slot=0)
        if match is False:
            raise VerifyError(f"{port}: MCUboot's sha256 of the uploaded image differs",
                              "the transfer was corrupted; flash again in recovery")
        stored = mcuboot.slot_hash(mcuboot.list_slots(dev), 0)
        if stored != want:
            raise VerifyError(f"{port}: slot 0 holds image {(stored or 'none')[:16]}… after "
                              f"the recovery upload, expected {want[:16]}…", "flash again")
        progress(0.88, "slot 0 verified; resetting into the application")
        mcuboot.reset(dev)
        dev.close()
        booted = mcuboot.wait_for_slots(port, options.baudrate, options.reboot_timeout_s
                                        * options.timeout_scale, cancel,
                                        "with the new application", settle_s=1.0,
                                        link=_same_transport(options, dev.transport_kind).link)
        if mcuboot.looks_like_recovery(booted):
            raise DeviceError(f"{port}: MCUboot stayed in serial recovery after the reset: "
                              "it did not boot the image",
                              "check the image's signature and that it is built for slot 0")
        running = mcuboot.active_slot(booted)
        got = running.hash if running else None
        if got != want:
            raise DeviceError(f"{port}: the application runs image {(got or '?')[:16]}…, not "
                              f"the uploaded {want[:16]}…", "flash again in recovery")
        progress(1.0, "verified: slot 0 hash, and the application answers")
        return self._image_result(artifact, port, clock, want, got, board, previous,
                                  [*notes, "recovery: slot 0 verified, the application "
                                   "answers"])

    def _image_result(self, artifact: Artifact, port: str, clock: Stopwatch, want: str,
                      device: str | None, board: Any, previous: str | None,
                      notes: list[str]) -> FlashResult:
        return FlashResult(
            ok=True, backend=self.name, port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=artifact.size, duration_s=clock.elapsed,
            digest_algo="sha256", local_digest=want, device_digest=device,
            verified=device == want, dest="image 0 (MCUboot)",
            board=(board.id if board else None), previous_sha256=previous, notes=notes)

    def _wait_boot(self, port: str, options: FlashOptions,
                   cancel: CancelToken | None) -> str | None:
        """Wait until the board answers after the reset; return the running image's hash."""
        deadline = time.monotonic() + options.reboot_timeout_s * options.timeout_scale
        last = "no answer"
        time.sleep(0.2)
        while time.monotonic() < deadline:
            check_cancel(cancel, "waiting for the new firmware")
            try:
                with mcuboot.open_session(port, options.baudrate, 1.0,
                                          link=options.link) as dev:
                    slots = mcuboot.list_slots(dev)
                    if _runtime_expected(options) and dev.model_info() is None:
                        last = "SMP answers but the runtime does not"
                    else:
                        running = mcuboot.active_slot(slots)
                        return running.hash if running else None
            except TinyOpsError as exc:
                last = exc.message
            time.sleep(0.3)
        raise DeviceError(f"{port}: the board did not answer after the reset ({last}); the new "
                          "image stays unconfirmed and MCUboot reverts it at the next reset",
                          "reset the board; it comes back with the previous firmware")


RECOVERY_TIMEOUT_FACTOR = 4.0


def _same_transport(options: FlashOptions, kind: str) -> FlashOptions:
    """Options whose link keeps the transport the board spoke before its reset: a board
    that is still booting is silent, and must not be mistaken for (and waited on as) a
    raw SMP board on every poll."""
    link = options.link or LinkOptions(baudrate=options.baudrate)
    if link.transport != "auto":
        return options
    return dataclasses.replace(options, link=dataclasses.replace(link, transport=kind))


def _runtime_expected(options: FlashOptions) -> bool:
    return bool(options.extra.get("require_runtime", False))


def _crc32(data: bytes) -> int:
    import zlib

    return zlib.crc32(data) & 0xFFFFFFFF


def image_hash(data: bytes, name: str = "image") -> bytes:
    """The image's SHA TLV (what MCUboot and img-mgmt call its hash), after the host checks
    (``device_drivers.mcuboot_image``); InputError if the file is not a valid image."""
    return check_image(data, name).digest


def upload_image(dev: DeviceSession, image: bytes, progress: Progress,
                 cancel: CancelToken | None, timeout_scale: float = 1.0,
                 slot: int = 0) -> bool | None:
    """Upload ``image`` through the img group (the shared windowed upload loop); return the
    device's ``match`` of the image sha256 (None when it does not say).

    ``slot`` is the img-mgmt image number (0: the application's secondary slot, or slot 0
    itself in MCUboot's serial recovery). After a lost answer the upload continues from the
    offset img-mgmt reports.
    """
    target = ImageTarget(hashlib.sha256(image).digest(), image=slot)
    try:
        outcome = windowed_upload(dev, image, target, progress=progress, cancel=cancel,
                                  max_retries=MAX_CHUNK_RETRIES, timeout_scale=timeout_scale)
    except DeviceError as exc:
        if isinstance(exc, DisconnectedError):
            raise
        raise DeviceError(f"{dev.port}: {exc.message}", exc.hint) from exc
    return getattr(outcome.last, "match", None)


def _model_dest(info: Any) -> str | None:
    """Where a runtime board gets a new model: of two files beside the default path, the
    one the running model did not come from.

    A cut upload then never damages the model the board falls back to after a reset, and
    the board never holds more than two models (resources/protocol/runtime_group.md).
    """
    if info is None:
        return None
    folder = posixpath.dirname(info.default_path) or "/"
    slots = [posixpath.join(folder, f"model-{name}.tflite") for name in ("a", "b")]
    running = info.path if info.loaded else None
    return slots[1] if running == slots[0] else slots[0]
