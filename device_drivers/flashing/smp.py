"""The smp back end: models as files (fs group), firmware as MCUboot images (img group).

Model: upload the file (chunks sized from the device's MCUmgr params, resumed from the
offset the device reports after a hiccup: ``link.files.upload_file``), have the device
hash what it stored (fs hash/checksum), then — on the TinyOps runtime — ``load-model``
with the expected sha256 (atomic: the previous model keeps running unless the new one is
verified and allocated) and read model-info back. A stock Zephyr SMP server (no group 64)
gets the upload and the fs-hash verification only.

Firmware: upload to slot 1 with the image's sha256 in the first chunk, check the device
lists the image in slot 1 with the hash from its TLVs, mark it for test, reset, wait for
the board to answer again, check MCUboot booted it (slot 0 hash), then confirm it. If the
new image does not boot or never answers, it stays unconfirmed and MCUboot reverts to the
previous firmware at the next reset: the board is never left worse than it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import posixpath
import time
from typing import Any, ClassVar

from smpclient import mcuboot
from smpclient.requests import image_management as imgreq
from smpclient.requests import os_management as osreq

from device_drivers.errors import (
    DeviceError,
    DisconnectedError,
    InputError,
    TinyOpsError,
    VerifyError,
)
from device_drivers.flashing.base import (
    Artifact,
    CancelToken,
    FlashOptions,
    FlashResult,
    Progress,
    Stopwatch,
    check_cancel,
    lookup_board,
    sub_progress,
)
from device_drivers.link.session import DeviceSession, SMPErrorResponse

log = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = "/lfs/model.tflite"
MAX_CHUNK_RETRIES = 8


class SmpBackend:
    name: ClassVar[str] = "smp"

    def __init__(self, session_timeout_s: float = 2.0) -> None:
        self.session_timeout_s = session_timeout_s

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

    def _open(self, port: str, options: FlashOptions) -> DeviceSession:
        return DeviceSession.open(port, baudrate=options.baudrate,
                                  timeout_s=self.session_timeout_s * options.timeout_scale)

    # ------------------------------------------------------------ model as a file
    def _flash_model(self, artifact: Artifact, port: str, options: FlashOptions,
                     progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        board = lookup_board(options.board)
        progress(0.0, f"connecting to {port}")
        with self._open(port, options) as dev:
            info = dev.model_info()
            previous = bytes(info.sha256).hex() if info and info.loaded and info.sha256 else None
            dest = options.dest or _model_dest(info) or (
                getattr(board, "model_path", None) or DEFAULT_MODEL_PATH)
            check_cancel(cancel, "flash")
            upload = dev.upload_file(artifact.data, dest,
                                     progress=sub_progress(progress, 0.02, 0.85), cancel=cancel)
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
            check_cancel(cancel, "flash")
            progress(0.88, "loading the model (the previous one runs until it verifies)")
            loaded = dev.load_model(dest, sha256=bytes.fromhex(local),
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
            board=getattr(board, "id", None) or runtime_board, previous_sha256=previous,
            notes=notes)

    # ------------------------------------------------------------ firmware as an image
    def _flash_image(self, artifact: Artifact, port: str, options: FlashOptions,
                     progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        board = lookup_board(options.board)
        tlv_hash = image_hash(artifact.data, artifact.name)
        want = tlv_hash.hex()
        notes: list[str] = []
        progress(0.0, f"connecting to {port}")
        with self._open(port, options) as dev:
            previous = _slot_hash(_states(dev), 0)
            if previous == want:
                progress(1.0, "this image already runs in slot 0")
                return self._image_result(artifact, port, clock, want, previous, board,
                                          previous, ["already running: nothing to swap"])
            check_cancel(cancel, "image upload")
            match = upload_image(dev, artifact.data, sub_progress(progress, 0.02, 0.8), cancel,
                                 options.timeout_scale)
            if match is False:
                raise VerifyError(f"{port}: the device's sha256 of the uploaded image differs",
                                  "the transfer was corrupted; flash again (the running "
                                  "firmware is untouched)")
            stored = _slot_hash(_states(dev), 1)
            if stored != want:
                raise VerifyError(f"{port}: slot 1 holds image {stored or 'none'}, expected "
                                  f"{want[:16]}…", "flash again")
            if match is True:
                notes.append("the device's sha256 of the upload matched")
            progress(0.82, "marking the new image for a test boot")
            dev.request(imgreq.ImageStatesWrite(hash=tlv_hash, confirm=False))
            progress(0.85, "resetting into MCUboot")
            # the board may drop the link before its answer arrives
            with contextlib.suppress(DisconnectedError):
                dev.request(osreq.ResetWrite(), timeout_s=self.session_timeout_s)
        running = self._wait_boot(port, options, cancel, want)
        if running != want:
            raise DeviceError(
                f"{port}: MCUboot did not boot the new image (slot 0 is {running[:16]}…): "
                "the previous firmware runs", "check the image's signature and target board")
        progress(0.95, "the new firmware answers: confirming it")
        with self._open(port, options) as dev:
            states = dev.request(imgreq.ImageStatesWrite(hash=tlv_hash, confirm=True))
            confirmed = any(_hex(s.hash) == want and s.confirmed for s in states.images)
            if not confirmed:
                states = _states(dev)
                confirmed = any(_hex(s.hash) == want and s.confirmed for s in states.images)
        if not confirmed:
            raise DeviceError(f"{port}: the device did not confirm the new image",
                              "it will revert at the next reset; flash again")
        progress(1.0, "verified: MCUboot booted the image, the runtime confirmed it")
        return self._image_result(artifact, port, clock, want, running, board, previous,
                                  [*notes, "tested, booted and confirmed"])

    def _image_result(self, artifact: Artifact, port: str, clock: Stopwatch, want: str,
                      device: str | None, board: Any, previous: str | None,
                      notes: list[str]) -> FlashResult:
        return FlashResult(
            ok=True, backend=self.name, port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=artifact.size, duration_s=clock.elapsed,
            digest_algo="sha256", local_digest=want, device_digest=device,
            verified=device == want, dest="slot 0 (MCUboot)", board=getattr(board, "id", None),
            previous_sha256=previous, notes=notes)

    def _wait_boot(self, port: str, options: FlashOptions, cancel: CancelToken | None,
                   want: str) -> str:
        """Wait until the board answers after the reset; return slot 0's hash."""
        deadline = time.monotonic() + options.reboot_timeout_s * options.timeout_scale
        last = "no answer"
        time.sleep(0.2)
        while time.monotonic() < deadline:
            check_cancel(cancel, "waiting for the new firmware")
            try:
                with DeviceSession.open(port, baudrate=options.baudrate, timeout_s=1.0) as dev:
                    dev.echo("tinyops")
                    if dev.model_info() is None and _runtime_expected(options):
                        last = "SMP answers but the runtime does not"
                    else:
                        return _slot_hash(_states(dev), 0) or ""
            except TinyOpsError as exc:
                last = exc.message
            time.sleep(0.3)
        raise DeviceError(f"{port}: the board did not answer after the reset ({last}); the new "
                          "image stays unconfirmed and MCUboot reverts it at the next reset",
                          "reset the board; it comes back with the previous firmware")


def _runtime_expected(options: FlashOptions) -> bool:
    return bool(options.extra.get("require_runtime", False))


def _crc32(data: bytes) -> int:
    import zlib

    return zlib.crc32(data) & 0xFFFFFFFF


def _hex(value: bytes | None) -> str | None:
    return bytes(value).hex() if value else None


def _states(dev: DeviceSession) -> Any:
    try:
        return dev.request(imgreq.ImageStatesRead())
    except SMPErrorResponse as exc:
        raise DeviceError(f"{dev.port} has no image management: {exc.message}",
                          "the board's firmware lacks the MCUmgr img group; use another "
                          "back end") from exc


def _slot_hash(states: Any, slot: int) -> str | None:
    for state in states.images:
        if int(state.slot) == slot and (state.image in (None, 0)):
            return _hex(state.hash)
    return None


def image_hash(data: bytes, name: str = "image") -> bytes:
    """The image's SHA256 TLV (what MCUboot and img-mgmt call its hash); InputError if the
    file is not a valid MCUboot image or lacks it."""
    try:
        stream = io.BytesIO(data)
        header = mcuboot.ImageHeader.load_from(stream)
        stream.seek(header.hdr_size + header.img_size)
        if header.protect_tlv_size:
            prot = mcuboot.ImageTLVInfo.load_from(stream, mcuboot.IMAGE_TLV_PROT_INFO_MAGIC)
            prot.load_tlvs_from(stream)
        info = mcuboot.ImageTLVInfo.load_from(stream, mcuboot.IMAGE_TLV_INFO_MAGIC)
        for tlv in info.load_tlvs_from(stream):
            if tlv.header.type == mcuboot.IMAGE_TLV.SHA256:
                return bytes(tlv.value)
    except (mcuboot.MCUBootImageError, ValueError, EOFError) as exc:
        raise InputError(f"{name} is not a valid MCUboot image: {exc}",
                         "sign it with imgtool (west sign / imgtool sign)") from exc
    raise InputError(f"{name} has no SHA256 TLV", "sign it with imgtool (west sign)")


def upload_image(dev: DeviceSession, image: bytes, progress: Progress,
                 cancel: CancelToken | None, timeout_scale: float = 1.0,
                 slot: int = 0) -> bool | None:
    """Upload ``image`` through the img group; return the device's ``match`` (or None).

    After a lost or garbled answer the same chunk is sent again: img-mgmt answers with the
    offset it really has, and the upload continues from there.
    """
    total = len(image)
    sha = hashlib.sha256(image).digest()
    client = dev.smp_client
    off = 0
    retries = 0
    baud = 115200.0
    while True:
        check_cancel(cancel, f"image upload at {off}/{total} B")
        first = off == 0
        fields: dict[str, Any] = {"image": slot, "len": total, "sha": sha,
                                  "upgrade": False} if first else {}
        # smpclient sizes the chunk so the whole frame fills the device's SMP buffer
        _, room = client.get_max_cbor_and_data_size(
            imgreq.ImageUploadWrite(off=off, data=b"", **fields))
        if room <= 0:
            raise DeviceError(f"{dev.port}: the device's SMP buffer is too small for an image "
                              "upload", "check the board's MCUmgr buffer configuration")
        request = imgreq.ImageUploadWrite(off=off, data=image[off:off + room], **fields)
        timeout = (dev.timeout_s + 20.0 * len(request.data) / baud
                   + (10.0 if first else 0.0)) * timeout_scale
        try:
            response = dev.request(request, timeout_s=timeout)
        except DisconnectedError:
            raise
        except SMPErrorResponse as exc:
            raise DeviceError(f"{dev.port}: image upload refused at {off}/{total} B: "
                              f"{exc.message}", "check that the image fits the slot") from exc
        except DeviceError as exc:
            retries += 1
            if retries > MAX_CHUNK_RETRIES:
                raise DeviceError(f"{dev.port}: image upload stalled at {off}/{total} B "
                                  f"({exc.message})", "check the cable and flash again") from exc
            log.info("%s: image chunk at %d unanswered, resending", dev.port, off)
            continue
        if response.off is None or not 0 <= int(response.off) <= total:
            raise DeviceError(f"{dev.port}: bad upload offset {response.off} from the device")
        off = int(response.off)
        progress(off / total, f"{off}/{total} B to slot 1")
        if off == total:
            return response.match


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
