"""UF2 files (https://github.com/microsoft/uf2): the one encoder and the one strict parser.

A UF2 file is a run of 512-byte blocks, each with two start magics, flags, a target address,
up to 476 payload bytes, its block number and the block count, a family id (when flag 0x2000
is set) and an end magic. ``model_tools`` writes them (export), ``device_drivers`` reads one
back to check it before it goes to a board. No I/O here.

The parser is strict: every block's magics, payload size and (when present) MD5 must be
right, blocks are numbered 0, 1, … N-1 in file order with one count N (a file may be several
such runs back to back, as concatenated UF2 files for several families are), no flash
address is written twice, and the last run is complete (else: truncated).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from tinyops_base.errors import InputError

BLOCK_SIZE = 512
MAX_PAYLOAD = 476
PAYLOAD = 256
"""Bytes per block the encoder writes, as every UF2 bootloader accepts (at most 476)."""
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30

FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FILE_CONTAINER = 0x00001000
FLAG_FAMILY_ID = 0x00002000
FLAG_MD5 = 0x00004000
FLAG_EXTENSION_TAGS = 0x00008000

_HEADER = struct.Struct("<8I")
_END = struct.Struct("<I")


def looks_like_uf2(data: bytes) -> bool:
    """Whether ``data`` starts like a UF2 file (first block's start magics)."""
    if len(data) < BLOCK_SIZE:
        return False
    m0, m1 = struct.unpack_from("<II", data)
    return (m0, m1) == (MAGIC_START0, MAGIC_START1)


def encode_uf2(data: bytes, address: int, family_id: int | None, *,
               payload: int = PAYLOAD) -> bytes:
    """UF2 file placing ``data`` at flash ``address`` for boards of ``family_id``.

    The last block is padded with 0xFF up to ``payload`` bytes (erased-flash value)."""
    if address < 0 or address % 4:
        raise InputError(f"UF2 address 0x{address:x} is not word-aligned",
                         "use the board's model region address")
    if not 0 < payload <= MAX_PAYLOAD or payload % 4:
        raise InputError(f"UF2 payload size {payload} is invalid", "use 256")
    if not data:
        raise InputError("nothing to write into the UF2 file", "pass a model")
    count = (len(data) + payload - 1) // payload
    flags = FLAG_FAMILY_ID if family_id is not None else 0
    out = bytearray()
    for n in range(count):
        chunk = data[n * payload:(n + 1) * payload].ljust(payload, b"\xff")
        out += _HEADER.pack(MAGIC_START0, MAGIC_START1, flags, address + n * payload, payload,
                            n, count, family_id or 0)
        out += chunk.ljust(MAX_PAYLOAD, b"\x00") + _END.pack(MAGIC_END)
    return bytes(out)


@dataclass(frozen=True)
class Uf2Block:
    flags: int
    address: int
    payload: bytes
    block_no: int
    num_blocks: int
    family_id: int | None


@dataclass(frozen=True)
class Uf2Image:
    blocks: tuple[Uf2Block, ...]

    @property
    def family_id(self) -> int | None:
        """The one family of every block that names one (None: none, or several)."""
        ids = {b.family_id for b in self.blocks if b.family_id is not None}
        return ids.pop() if len(ids) == 1 else None

    @property
    def flash_blocks(self) -> list[Uf2Block]:
        return [b for b in self.blocks if not b.flags & FLAG_NOT_MAIN_FLASH]

    def segments(self) -> list[tuple[int, bytes]]:
        """Contiguous (address, bytes) runs of what lands in flash, lowest address first."""
        out: list[tuple[int, bytearray]] = []
        for block in sorted(self.flash_blocks, key=lambda b: b.address):
            if out and out[-1][0] + len(out[-1][1]) == block.address:
                out[-1][1].extend(block.payload)
            else:
                out.append((block.address, bytearray(block.payload)))
        return [(addr, bytes(data)) for addr, data in out]

    def read(self, address: int, size: int, fill: int = 0xFF) -> bytes:
        """The bytes the image puts at ``[address, address + size)`` (gaps read as ``fill``)."""
        buf = bytearray([fill]) * size
        for block in self.flash_blocks:
            lo = max(block.address, address)
            hi = min(block.address + len(block.payload), address + size)
            if lo < hi:
                buf[lo - address:hi - address] = block.payload[lo - block.address:
                                                               hi - block.address]
        return bytes(buf)

    @property
    def span(self) -> tuple[int, int]:
        """(lowest address, end address) of the flash payload."""
        blocks = self.flash_blocks
        if not blocks:
            return (0, 0)
        return (min(b.address for b in blocks),
                max(b.address + len(b.payload) for b in blocks))


def _check_md5(raw: bytes, flags: int, addr: int, size: int, where: str) -> None:
    if not flags & FLAG_MD5 or 32 + size + 24 > BLOCK_SIZE - 4:
        return
    md5_addr, md5_len = struct.unpack_from("<II", raw, 32 + size)
    digest = raw[32 + size + 8:32 + size + 24]
    if md5_addr == addr and md5_len == size and hashlib.md5(raw[32:32 + size]).digest() != digest:
        raise InputError(f"{where} fails its MD5 check", "the file is corrupted")


def parse_uf2(data: bytes, name: str = "the file") -> Uf2Image:
    """Parse and check a UF2 file (see the module docstring); InputError naming the first
    bad block."""
    if not data:
        raise InputError(f"{name} is empty", "export the UF2 again")
    if len(data) % BLOCK_SIZE:
        raise InputError(f"{name} is not a UF2 file: {len(data)} B is not a multiple of 512",
                         "the file is truncated or not a UF2; export it again")
    blocks: list[Uf2Block] = []
    seen: dict[int, int] = {}
    expect_no, run_total = 0, 0
    for index in range(len(data) // BLOCK_SIZE):
        raw = data[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE]
        m0, m1, flags, addr, size, block_no, num_blocks, extra = _HEADER.unpack_from(raw)
        (m_end,) = _END.unpack_from(raw, BLOCK_SIZE - 4)
        where = f"{name}: block {index}"
        if m0 != MAGIC_START0 or m1 != MAGIC_START1 or m_end != MAGIC_END:
            raise InputError(f"{where} has a bad magic number: not a UF2 file or corrupted",
                             "export the UF2 again")
        if size > MAX_PAYLOAD:
            raise InputError(f"{where} claims {size} payload bytes (at most 476)",
                             "export the UF2 again")
        if expect_no == 0:
            run_total = num_blocks
        if num_blocks == 0 or block_no != expect_no or num_blocks != run_total:
            raise InputError(f"{where} is numbered {block_no} of {num_blocks}, expected "
                             f"{expect_no} of {run_total or 'N'}: out of order or corrupted",
                             "export the UF2 again")
        expect_no = (expect_no + 1) % run_total
        _check_md5(raw, flags, addr, size, where)
        family = extra if flags & FLAG_FAMILY_ID and not flags & FLAG_FILE_CONTAINER else None
        if not flags & FLAG_NOT_MAIN_FLASH and addr in seen:
            raise InputError(f"{where} writes address {addr:#x} again (also block "
                             f"{seen[addr]})", "export the UF2 again")
        seen[addr] = index
        blocks.append(Uf2Block(flags, addr, bytes(raw[32:32 + size]), block_no, num_blocks,
                               family))
    if expect_no:
        raise InputError(f"{name} ends after block {expect_no - 1} of {run_total}",
                         "the file is truncated; export it again")
    return Uf2Image(tuple(blocks))


@dataclass(frozen=True)
class Uf2Contents:
    start: int
    data: bytes
    """Contiguous bytes from ``start`` (gaps filled with 0xFF)."""
    family_id: int | None
    blocks: int


def decode_uf2(raw: bytes, name: str = "the UF2 file") -> Uf2Contents:
    """A single-family UF2 file back to its flash contents; InputError if malformed."""
    image = parse_uf2(raw, name)
    families = {b.family_id for b in image.flash_blocks if b.family_id is not None}
    if len(families) > 1:
        raise InputError(f"{name} mixes board families", "export it again")
    if not image.flash_blocks:
        raise InputError(f"{name} has no flash blocks", "export it again")
    start, end = image.span
    return Uf2Contents(start, image.read(start, end - start), image.family_id,
                       len(image.blocks))
