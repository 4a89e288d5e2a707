"""UF2 files (https://github.com/microsoft/uf2): parsing and checking, no I/O.

A UF2 file is a run of 512-byte blocks, each with two start magics, flags, a target
address, up to 476 payload bytes, its block number and the block count, a family id (when
flag 0x2000 is set) and an end magic. The export code writes them; this module reads one
back to check it before it goes to a board (and in tests, after it went to a drive).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from device_drivers.errors import InputError

BLOCK_SIZE = 512
MAX_PAYLOAD = 476
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30

FLAG_NOT_MAIN_FLASH = 0x00000001
FLAG_FILE_CONTAINER = 0x00001000
FLAG_FAMILY_ID = 0x00002000
FLAG_MD5 = 0x00004000
FLAG_EXTENSION_TAGS = 0x00008000

_HEADER = struct.Struct("<8I")


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


def parse_uf2(data: bytes, name: str = "the file") -> Uf2Image:
    """Parse and check a UF2 file; InputError naming the first bad block."""
    if not data:
        raise InputError(f"{name} is empty", "export the UF2 again")
    if len(data) % BLOCK_SIZE:
        raise InputError(f"{name} is not a UF2 file: {len(data)} B is not a multiple of 512",
                         "the file is truncated or not a UF2; export it again")
    blocks: list[Uf2Block] = []
    seen: dict[int, int] = {}
    for index in range(len(data) // BLOCK_SIZE):
        raw = data[index * BLOCK_SIZE:(index + 1) * BLOCK_SIZE]
        m0, m1, flags, addr, size, block_no, num_blocks, extra = _HEADER.unpack_from(raw)
        (m_end,) = struct.unpack_from("<I", raw, BLOCK_SIZE - 4)
        where = f"{name}: block {index}"
        if m0 != MAGIC_START0 or m1 != MAGIC_START1 or m_end != MAGIC_END:
            raise InputError(f"{where} has a bad magic number: not a UF2 file or corrupted",
                             "export the UF2 again")
        if size > MAX_PAYLOAD:
            raise InputError(f"{where} claims {size} payload bytes (at most 476)",
                             "export the UF2 again")
        if num_blocks == 0 or block_no >= num_blocks:
            raise InputError(f"{where} is numbered {block_no} of {num_blocks}",
                             "export the UF2 again")
        payload = raw[32:32 + size]
        if flags & FLAG_MD5 and 32 + size + 24 <= BLOCK_SIZE - 4:
            md5_addr, md5_len = struct.unpack_from("<II", raw, 32 + size)
            digest = raw[32 + size + 8:32 + size + 24]
            region = payload[:md5_len] if md5_addr == addr else payload
            if md5_addr == addr and md5_len == size and hashlib.md5(region).digest() != digest:
                raise InputError(f"{where} fails its MD5 check", "the file is corrupted")
        family = extra if flags & FLAG_FAMILY_ID else None
        if flags & FLAG_FILE_CONTAINER:
            family = None
        if not flags & FLAG_NOT_MAIN_FLASH and addr in seen:
            raise InputError(f"{where} writes address {addr:#x} again (also block "
                             f"{seen[addr]})", "export the UF2 again")
        seen[addr] = index
        blocks.append(Uf2Block(flags, addr, bytes(payload), block_no, num_blocks, family))
    totals = {b.num_blocks for b in blocks}
    if len(totals) == 1 and totals.pop() != len(blocks):
        raise InputError(f"{name} has {len(blocks)} blocks but says {blocks[0].num_blocks}",
                         "the file is truncated; export it again")
    return Uf2Image(tuple(blocks))
