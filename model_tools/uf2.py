"""UF2 encoding (https://github.com/microsoft/uf2) of a model placed at a flash address.

Written here rather than taken from PyPI: ``adafruit-uf2`` (Microsoft's uf2conv packaged)
keeps the family id and start address in module globals (unsafe from worker threads) and
asserts on bad input; ``uf2utils`` is LGPL and pulls in littlefs. The format is 512-byte
blocks with fixed magics, so an encoder and a decoder are a few lines each.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from model_tools.errors import ModelInputError

BLOCK_SIZE = 512
PAYLOAD = 256  # bytes per block, as every UF2 bootloader accepts (max 476)
MAGIC_START0 = 0x0A324655
MAGIC_START1 = 0x9E5D5157
MAGIC_END = 0x0AB16F30
FLAG_FAMILY_ID = 0x00002000
FLAG_NOT_MAIN_FLASH = 0x00000001
_HEADER = struct.Struct("<8I")


def encode_uf2(data: bytes, address: int, family_id: int | None, *,
               payload: int = PAYLOAD) -> bytes:
    """UF2 file placing ``data`` at flash ``address`` for boards of ``family_id``.

    The last block is padded with 0xFF up to ``payload`` bytes (erased-flash value)."""
    if address < 0 or address % 4:
        raise ModelInputError(f"UF2 address 0x{address:x} is not word-aligned",
                              "use the board's model region address")
    if not 0 < payload <= 476 or payload % 4:
        raise ModelInputError(f"UF2 payload size {payload} is invalid", "use 256")
    if not data:
        raise ModelInputError("nothing to write into the UF2 file", "pass a model")
    count = (len(data) + payload - 1) // payload
    flags = FLAG_FAMILY_ID if family_id is not None else 0
    out = bytearray()
    for n in range(count):
        chunk = data[n * payload:(n + 1) * payload].ljust(payload, b"\xff")
        block = _HEADER.pack(MAGIC_START0, MAGIC_START1, flags, address + n * payload, payload,
                             n, count, family_id or 0)
        block += chunk.ljust(476, b"\x00") + struct.pack("<I", MAGIC_END)
        out += block
    return bytes(out)


@dataclass(frozen=True)
class Uf2Contents:
    start: int
    data: bytes  # contiguous bytes from ``start`` (gaps filled with 0xFF)
    family_id: int | None
    blocks: int


def decode_uf2(raw: bytes) -> Uf2Contents:
    """Parse a UF2 file back to its flash contents; raises ``ModelInputError`` if malformed."""
    if not raw or len(raw) % BLOCK_SIZE:
        raise ModelInputError(f"not a UF2 file: {len(raw)} bytes is not a multiple of 512",
                              "the file is truncated")
    total = len(raw) // BLOCK_SIZE
    segments: dict[int, bytes] = {}
    family = None
    for n in range(total):
        block = raw[n * BLOCK_SIZE:(n + 1) * BLOCK_SIZE]
        m0, m1, flags, addr, size, blockno, count, fam = _HEADER.unpack_from(block)
        (end,) = struct.unpack_from("<I", block, BLOCK_SIZE - 4)
        if (m0, m1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise ModelInputError(f"UF2 block {n} has bad magic numbers", "the file is corrupt")
        if blockno != n or count != total or size > 476:
            raise ModelInputError(f"UF2 block {n} is out of sequence or oversized",
                                  "the file is corrupt")
        if flags & FLAG_NOT_MAIN_FLASH:
            continue
        if flags & FLAG_FAMILY_ID:
            if family is not None and fam != family:
                raise ModelInputError("UF2 file mixes board families", "export it again")
            family = fam
        segments[addr] = block[32:32 + size]
    if not segments:
        raise ModelInputError("UF2 file has no flash blocks", "export it again")
    start = min(segments)
    end = max(a + len(d) for a, d in segments.items())
    buf = bytearray(b"\xff" * (end - start))
    for addr, chunk in segments.items():
        buf[addr - start:addr - start + len(chunk)] = chunk
    return Uf2Contents(start, bytes(buf), family, total)
