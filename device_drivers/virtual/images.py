"""Image management (group 1): MCUboot-like slots with test, confirm and revert.

Slot 0 runs; uploads go to slot 1. ``test`` marks slot 1 pending; a reset swaps it into
slot 0 unconfirmed; ``confirm`` (of the running image) makes it permanent; a reset
without confirm swaps back (revert). ``confirm`` with slot 1's hash makes the next swap
permanent at once. The image hash is the SHA-256 TLV of an MCUboot image when the file
is one, else the SHA-256 of the whole file; the version comes from the MCUboot header.
"""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from smp import error as smperror
from smp import image_management as img

from device_drivers.mcuboot_image import IMAGE_MAGIC
from device_drivers.virtual.flash import FlashStore
from device_drivers.virtual.smp_server import Dispatcher, Fail

E = img.IMG_MGMT_ERR
GROUP = 1
_HDR = struct.Struct("<IIHHIIBBHI")  # MCUboot image_header, first 28 bytes
_TLV_INFO = struct.Struct("<HH")
_TLV = struct.Struct("<BxH")
_TLV_MAGICS = (0x6907, 0x6908)
_TLV_SHA256 = 0x10


def _fail(code: E) -> Fail:
    return Fail(code, GROUP, code.name, img.ImageManagementErrorV2)


def image_identity(data: bytes) -> tuple[str, bytes]:
    """(version, hash) of an image: from its MCUboot header/TLVs when it has them."""
    if len(data) >= _HDR.size:
        magic, _load, hdr_size, _prot, img_size, _flags, major, minor, rev, build = \
            _HDR.unpack_from(data)
        if magic == IMAGE_MAGIC:
            version = f"{major}.{minor}.{rev}" + (f".{build}" if build else "")
            off = hdr_size + img_size
            while off + _TLV_INFO.size <= len(data):
                tlv_magic, total = _TLV_INFO.unpack_from(data, off)
                if tlv_magic not in _TLV_MAGICS or total < _TLV_INFO.size:
                    break
                pos, end = off + _TLV_INFO.size, min(off + total, len(data))
                while pos + _TLV.size <= end:
                    kind, length = _TLV.unpack_from(data, pos)
                    if kind == _TLV_SHA256 and length == 32:
                        return version, data[pos + _TLV.size: pos + _TLV.size + 32]
                    pos += _TLV.size + length
                off += total
            return version, hashlib.sha256(data).digest()
    return "0.0.0", hashlib.sha256(data).digest()


class ImageGroup:
    def __init__(self, flash: FlashStore, slot_size: int, factory_version: str,
                 board_id: str) -> None:
        self.flash = flash
        self.slot_size = slot_size
        self._upload: dict[str, Any] | None = None
        if "images" not in flash.state:
            factory = hashlib.sha256(f"tinyops-runtime {factory_version} {board_id}".encode())
            flash.state["images"] = [self._slot_record(factory_version, factory.digest(),
                                                       confirmed=True)]
            flash.save()

    @staticmethod
    def _slot_record(version: str, digest: bytes, confirmed: bool = False,
                     bootable: bool = True) -> dict[str, Any]:
        return {"version": version, "hash": digest.hex(), "bootable": bootable,
                "confirmed": confirmed, "pending": False, "permanent": False}

    @property
    def slots(self) -> list[dict[str, Any]]:
        return self.flash.state["images"]

    def running_version(self) -> str:
        return str(self.slots[0]["version"])

    def register(self, d: Dispatcher) -> None:
        d.error_classes[GROUP] = img.ImageManagementErrorV2
        d.add(img.ImageStatesReadRequest, lambda _r: img.ImageStatesReadResponse(
            images=self.states()))
        d.add(img.ImageStatesWriteRequest, self.state_write)
        d.add(img.ImageUploadWriteRequest, self.upload)
        d.add(img.ImageEraseRequest, self.erase)

    def states(self) -> list[img.ImageState]:
        out = []
        for slot, rec in enumerate(self.slots):
            if rec is None:
                continue
            out.append(img.ImageState(
                image=0, slot=slot, version=rec["version"], hash=bytes.fromhex(rec["hash"]),
                bootable=rec["bootable"] or None, pending=rec["pending"] or None,
                confirmed=rec["confirmed"] or None, active=(slot == 0) or None,
                permanent=rec["permanent"] or None))
        return out

    def _secondary(self) -> dict[str, Any] | None:
        return self.slots[1] if len(self.slots) > 1 else None

    def state_write(self, req: img.ImageStatesWriteRequest) -> img.ImageStatesWriteResponse:
        primary, secondary = self.slots[0], self._secondary()
        target = bytes(req.hash).hex() if req.hash is not None else None
        if target is None or target == primary["hash"]:
            if not req.confirm:
                if target is None:
                    raise Fail(smperror.MGMT_ERR.EINVAL, reason="hash is required to test")
                raise _fail(E.IMAGE_SETTING_TEST_TO_ACTIVE_DENIED)
            primary["confirmed"] = True  # the running image stays: no revert at reset
        elif secondary is not None and target == secondary["hash"]:
            if not secondary["bootable"]:
                raise _fail(E.INVALID_HASH)
            secondary["pending"] = True
            secondary["permanent"] = bool(req.confirm)
        else:
            raise _fail(E.HASH_NOT_FOUND)
        self.flash.save()
        return img.ImageStatesWriteResponse(images=self.states())

    def upload(self, req: img.ImageUploadWriteRequest) -> img.ImageUploadWriteResponse:
        if (req.image or 0) != 0:
            raise _fail(E.INVALID_SLOT)
        s = self._upload
        if req.off == 0:
            if req.len is None:
                raise _fail(E.INVALID_LENGTH)
            if req.len > self.slot_size:
                raise _fail(E.INVALID_IMAGE_TOO_LARGE)
            secondary = self._secondary()
            if secondary is not None and secondary["pending"]:
                raise _fail(E.IMAGE_ALREADY_PENDING)
            if not self.slots[0]["confirmed"]:
                raise _fail(E.NO_FREE_SLOT)  # slot 1 holds the image a revert needs
            sha = bytes(req.sha) if req.sha else None
            if s is not None and sha and s["sha"] == sha and s["len"] == req.len \
                    and 0 < s["off"] < s["len"]:
                return img.ImageUploadWriteResponse(off=s["off"])  # resume the session
            self._upload = s = {"len": req.len, "sha": sha, "off": 0, "data": bytearray()}
            if len(self.slots) > 1:  # starting an upload erases slot 1
                del self.slots[1:]
                self.flash.slot_path(1).unlink(missing_ok=True)
                self.flash.save()
        elif s is None:
            raise _fail(E.INVALID_OFFSET)
        if req.off != s["off"]:
            return img.ImageUploadWriteResponse(off=s["off"])  # client resyncs
        if req.off + len(req.data) > s["len"]:
            raise _fail(E.INVALID_IMAGE_DATA_OVERRUN)
        s["data"].extend(req.data)
        s["off"] += len(req.data)
        if s["off"] < s["len"]:
            return img.ImageUploadWriteResponse(off=s["off"])
        data = bytes(s["data"])
        self._upload = None
        match = None if s["sha"] is None else hashlib.sha256(data).digest() == s["sha"]
        version, digest = image_identity(data)
        self.flash.slot_path(1).write_bytes(data)
        self.slots[1:] = [self._slot_record(version, digest, bootable=match is not False)]
        self.flash.save()
        return img.ImageUploadWriteResponse(off=s["off"], match=match)

    def erase(self, req: img.ImageEraseRequest) -> img.ImageEraseResponse:
        slot = 1 if req.slot is None else req.slot
        if slot != 1:
            raise _fail(E.INVALID_SLOT)
        secondary = self._secondary()
        if secondary is not None and (secondary["pending"] or not self.slots[0]["confirmed"]):
            raise _fail(E.IMAGE_ALREADY_PENDING)
        self._upload = None
        del self.slots[1:]
        self.flash.slot_path(1).unlink(missing_ok=True)
        self.flash.save()
        return img.ImageEraseResponse()

    def boot(self) -> str:
        """What MCUboot does at reset: swap a pending image in, or revert an unconfirmed one.
        Returns what happened (``swap``, ``revert`` or ``none``)."""
        self._upload = None
        primary, secondary = self.slots[0], self._secondary()
        if secondary is not None and secondary["pending"]:
            permanent = secondary["permanent"]
            self.flash.swap_slots()
            new_primary = dict(secondary, pending=False, permanent=False, confirmed=permanent)
            old = dict(primary, pending=False, permanent=False, confirmed=False)
            self.slots[:] = [new_primary, old]
            outcome = "swap"
        elif not primary["confirmed"] and secondary is not None:
            self.flash.swap_slots()
            restored = dict(secondary, confirmed=True, pending=False, permanent=False)
            rejected = dict(primary, confirmed=False, pending=False, permanent=False)
            self.slots[:] = [restored, rejected]
            outcome = "revert"
        else:
            outcome = "none"
        self.flash.save()
        return outcome
