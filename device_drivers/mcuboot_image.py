"""MCUboot images checked on the host, before a single byte goes to a board.

An MCUboot image is a header (magic, header size, image size, protected-TLV size,
flags, version), the body, an optional protected TLV area (covered by the hash and the
signature) and the TLV area (the SHA TLV, signatures, key hash). ``check_image`` walks
that layout itself (sizes against the file, every TLV inside its area), then asks
MCUboot's own ``imgtool`` (``Image.verify``) for the verdict on the hash and, when a key
is given, the signature. Every failure is an ``InputError`` with one line saying what
is wrong with the file and what to do.
"""

from __future__ import annotations

import os
import struct
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError

IMAGE_MAGIC = 0x96F3B83D
TLV_INFO_MAGIC = 0x6907
TLV_PROT_INFO_MAGIC = 0x6908
HEADER = struct.Struct("<IIHHIIBBHI")  # magic, load, hdr, prot, img size, flags, version
TLV_INFO = struct.Struct("<HH")
TLV = struct.Struct("<BBH")

TLV_NAMES = {0x01: "KEYHASH", 0x02: "PUBKEY", 0x10: "SHA256", 0x11: "SHA384",
             0x12: "SHA512", 0x20: "RSA2048", 0x22: "ECDSASIG", 0x23: "RSA3072",
             0x24: "ED25519", 0x25: "SIG_PURE", 0x30: "ENCRSA2048", 0x31: "ENCKW",
             0x32: "ENCEC256", 0x33: "ENCX25519", 0x34: "ENCX25519_SHA512",
             0x40: "DEPENDENCY", 0x50: "SEC_CNT", 0x60: "BOOT_RECORD"}
SHA_TLVS = {0x10: "sha256", 0x11: "sha384", 0x12: "sha512"}
SIGNATURE_TLVS = {0x20, 0x22, 0x23, 0x24, 0x25}
FLAG_NAMES = {0x01: "pic", 0x04: "encrypted-aes128", 0x08: "encrypted-aes256",
              0x10: "non-bootable", 0x20: "ram-load", 0x100: "rom-fixed",
              0x200: "lzma1", 0x400: "lzma2", 0x800: "arm-thumb"}
ENCRYPTED = 0x04 | 0x08
SIGN_HINT = "sign it with imgtool sign (or west sign) and flash the .signed.bin"
DAMAGED_HINT = "the file was changed or cut after signing: use the build's .signed.bin " \
               "again (copy or download it once more)"


@dataclass(frozen=True)
class ImageCheck:
    """What the host learned about a valid image."""

    name: str
    size: int
    version: str
    hash: str
    """The SHA TLV (hex): what MCUboot and img-mgmt call the image's hash."""
    hash_algo: str
    header_size: int
    image_size: int
    protected_tlv_size: int
    tlv_size: int
    load_address: int
    flags: list[str] = field(default_factory=list)
    tlvs: list[str] = field(default_factory=list)
    signed: bool = False
    signature: str = "not checked"
    """``verified`` (with --key), ``not checked`` (signed, no key given) or ``none``."""
    trailing_bytes: int = 0

    @property
    def digest(self) -> bytes:
        return bytes.fromhex(self.hash)

    @property
    def version_tuple(self) -> tuple[int, int, int, int]:
        return version_tuple(self.version)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def version_tuple(text: str) -> tuple[int, int, int, int]:
    """``1.2.3+4`` / ``1.2.3.4`` / ``1.2.3`` as a comparable tuple (missing parts 0)."""
    parts = [int(p) for p in text.replace("+", ".").split(".") if p.isdigit()][:4]
    return tuple(([*parts, 0, 0, 0, 0])[:4])  # type: ignore[return-value]


def check_image(data: bytes, name: str = "image", key: str | Path | None = None) -> ImageCheck:
    """Check ``data`` as an MCUboot image (and its signature against ``key``, a PEM file)."""
    if len(data) < HEADER.size:
        raise InputError(f"{name} is too short for an MCUboot image ({len(data)} B, the "
                         f"header alone is 32 B)", SIGN_HINT)
    magic, load, hdr_size, prot_size, img_size, flags, major, minor, rev, build = \
        HEADER.unpack_from(data)
    if magic != IMAGE_MAGIC:
        raise InputError(f"{name} is not an MCUboot image (header magic 0x{magic:08x}, "
                         f"expected 0x{IMAGE_MAGIC:08x})", SIGN_HINT)
    if hdr_size < HEADER.size:
        raise InputError(f"{name}'s header says it is {hdr_size} B, less than the 32-byte "
                         "MCUboot header", DAMAGED_HINT)
    body_end = hdr_size + img_size
    if body_end > len(data):
        raise InputError(f"{name} is truncated: its header announces {body_end} B of header "
                         f"and image, the file has {len(data)} B", DAMAGED_HINT)
    tlvs: list[int] = []
    off = body_end
    if prot_size:
        off = _walk_area(data, off, TLV_PROT_INFO_MAGIC, "protected TLV area", name, tlvs)
        if off - body_end != prot_size:
            raise InputError(f"{name}'s protected TLV area is {off - body_end} B but the "
                             f"header says {prot_size} B", DAMAGED_HINT)
    prot_end = off
    end = _walk_area(data, off, TLV_INFO_MAGIC, "TLV area", name, tlvs)
    sha = [SHA_TLVS[t] for t in tlvs if t in SHA_TLVS]
    if not sha:
        raise InputError(f"{name} has no SHA256 TLV: MCUboot would refuse to boot it",
                         SIGN_HINT)
    digest = _tlv_value(data, prot_end, next(t for t in tlvs if t in SHA_TLVS))
    check = ImageCheck(
        name=name, size=len(data), version=f"{major}.{minor}.{rev}+{build}",
        hash=digest.hex(), hash_algo=sha[0], header_size=hdr_size, image_size=img_size,
        protected_tlv_size=prot_size, tlv_size=end - prot_end, load_address=load,
        flags=[label for bit, label in FLAG_NAMES.items() if flags & bit],
        tlvs=[TLV_NAMES.get(t, f"0x{t:02x}") for t in tlvs],
        signed=any(t in SIGNATURE_TLVS for t in tlvs), trailing_bytes=len(data) - end,
        signature="none")
    if flags & ENCRYPTED:
        # the hash covers the plaintext: only MCUboot can check it after decrypting
        if key is not None:
            raise InputError(f"{name} is encrypted: its signature can only be checked by "
                             "MCUboot after decryption", "flash it without --key")
        return _replace(check, signature="not checked" if check.signed else "none")
    result = _imgtool_verify(data, _load_key(key) if key is not None else None)
    _explain(result, check, key)
    status = "verified" if key is not None else ("not checked" if check.signed else "none")
    return _replace(check, signature=status)


def _replace(check: ImageCheck, **changes: Any) -> ImageCheck:
    return ImageCheck(**{**asdict(check), **changes})


def _walk_area(data: bytes, off: int, magic: int, what: str, name: str,
               types: list[int]) -> int:
    """Check the TLV area at ``off``; append its TLV types; return where it ends."""
    if off + TLV_INFO.size > len(data):
        raise InputError(f"{name} is truncated: the file ends where its {what} should start "
                         f"(offset {off})", DAMAGED_HINT)
    got, total = TLV_INFO.unpack_from(data, off)
    total = int(total)
    if got != magic:
        raise InputError(f"{name} has no valid {what}: magic 0x{got:04x} at offset {off}, "
                         f"expected 0x{magic:04x}", DAMAGED_HINT)
    end = off + total
    if total < TLV_INFO.size or end > len(data):
        raise InputError(f"{name} is truncated: its {what} needs {total} B from offset {off},"
                         f" the file has {len(data) - off} B left", DAMAGED_HINT)
    pos = off + TLV_INFO.size
    while pos < end:
        if pos + TLV.size > end:
            raise InputError(f"{name}'s {what} is corrupt: a TLV header at offset {pos} runs "
                             "past the area's end", DAMAGED_HINT)
        kind, _, length = TLV.unpack_from(data, pos)
        if pos + TLV.size + length > end:
            raise InputError(f"{name}'s {what} is corrupt: TLV {TLV_NAMES.get(kind, kind)} "
                             f"at offset {pos} ({length} B) runs past the area's end",
                             DAMAGED_HINT)
        types.append(kind)
        pos += TLV.size + length
    return end


def _tlv_value(data: bytes, area: int, kind: int) -> bytes:
    _, total = TLV_INFO.unpack_from(data, area)
    pos, end = area + TLV_INFO.size, area + total
    while pos < end:
        got, _, length = TLV.unpack_from(data, pos)
        if got == kind:
            return data[pos + TLV.size: pos + TLV.size + length]
        pos += TLV.size + length
    raise AssertionError("TLV vanished between two walks")  # pragma: no cover


def _load_key(key: str | Path) -> Any:
    from imgtool import keys

    path = Path(key)
    try:
        loaded = keys.load(str(path))
    except FileNotFoundError:
        raise InputError(f"key file {path} does not exist", "check the --key path") from None
    except OSError as exc:
        raise InputError(f"cannot read key file {path}: {exc.strerror or exc}",
                         "check the --key path") from exc
    except Exception as exc:  # cryptography's and imgtool's own errors on bad PEM
        raise InputError(f"{path} is not a key imgtool can use ({exc})",
                         "pass the PEM signing key or its public key "
                         "(imgtool getpub -k KEY -e pem)") from exc
    if loaded is None:
        raise InputError(f"{path} is password-protected",
                         "pass its public key instead (imgtool getpub -k KEY -e pem)")
    return loaded


def _imgtool_verify(data: bytes, key: Any) -> Any:
    """imgtool's own verdict; it reads a file, so the bytes go to a private temp file."""
    from imgtool.image import Image

    fd, tmp = tempfile.mkstemp(suffix=".bin", prefix="tinyops-image-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return Image.verify(tmp, key)[0]
    except (struct.error, IndexError, ValueError) as exc:  # a layout imgtool cannot read
        raise InputError(f"imgtool cannot read this image's layout ({exc})",
                         DAMAGED_HINT) from exc
    finally:
        os.unlink(tmp)


def _explain(result: Any, check: ImageCheck, key: str | Path | None) -> None:
    name = result.name
    if name == "OK":
        return
    what = check.name
    if name == "INVALID_HASH":
        covered = "header, image and protected TLVs" if check.protected_tlv_size else \
            "header and image"
        raise InputError(f"{what} fails its {check.hash_algo.upper()} check: the {covered} "
                         "no longer match the hash stored at signing", DAMAGED_HINT)
    if name == "KEY_MISMATCH":
        raise InputError(f"{what} is hashed with {check.hash_algo.upper()}, which "
                         f"{Path(str(key)).name}'s key type does not use",
                         "pass the key this image was signed with")
    if name == "INVALID_SIGNATURE":
        if not check.signed:
            raise InputError(f"{what} is not signed (no signature TLV) but --key was given",
                             "sign it with imgtool sign --key KEY, or flash without --key")
        raise InputError(f"{what}'s signature does not match {Path(str(key)).name}",
                         "pass the key it was signed with, or sign it again with this key")
    raise InputError(f"imgtool rejects {what}: {name.lower().replace('_', ' ')}",
                     DAMAGED_HINT)
