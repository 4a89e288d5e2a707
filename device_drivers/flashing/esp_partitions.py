"""ESP-IDF partition tables (binary form, as ``gen_esp32part.py`` writes them): parsing only.

The table sits at flash offset 0x8000 (default) and is at most 0xC00 bytes: 32-byte
entries ``<2sBBII16sI`` (magic ``AA 50``, type, subtype, offset, size, NUL-padded label,
flags), then an optional MD5 entry (``EB EB``, 14 bytes of ``FF``, the MD5 of all entries
before it), then ``FF`` padding.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from device_drivers.errors import DeviceError

TABLE_OFFSET = 0x8000
TABLE_MAX_LEN = 0xC00
ENTRY = struct.Struct("<2sBBII16sI")
ENTRY_MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb"

TYPE_APP = 0x00
TYPE_DATA = 0x01
APP_FACTORY = 0x00
APP_OTA_MIN = 0x10
APP_OTA_MAX = 0x1F
APP_TEST = 0x20

DATA_SUBTYPES = {0x00: "ota", 0x01: "phy", 0x02: "nvs", 0x03: "coredump", 0x04: "nvs_keys",
                 0x05: "efuse", 0x06: "undefined", 0x80: "esphttpd", 0x81: "fat",
                 0x82: "spiffs", 0x83: "littlefs"}
FLAG_ENCRYPTED = 0x01
FLAG_READONLY = 0x02


@dataclass(frozen=True)
class Partition:
    label: str
    type: int
    subtype: int
    offset: int
    size: int
    flags: int = 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def readonly(self) -> bool:
        return bool(self.flags & FLAG_READONLY)

    @property
    def is_app(self) -> bool:
        return self.type == TYPE_APP

    @property
    def end(self) -> int:
        return self.offset + self.size


def parse_partition_table(data: bytes) -> list[Partition]:
    """Parse a binary table; DeviceError when the flash holds none or a corrupt one."""
    parts: list[Partition] = []
    for pos in range(0, min(len(data), TABLE_MAX_LEN) - ENTRY.size + 1, ENTRY.size):
        raw = data[pos:pos + ENTRY.size]
        if raw == b"\xff" * ENTRY.size:
            break
        if raw[:2] == MD5_MAGIC:
            if hashlib.md5(data[:pos]).digest() != raw[16:32]:
                raise DeviceError("the partition table's MD5 does not match its entries",
                                  "the table is corrupt: flash the firmware's partition "
                                  "table again")
            continue
        magic, ptype, subtype, offset, size, label, flags = ENTRY.unpack(raw)
        if magic != ENTRY_MAGIC:
            raise DeviceError(f"no valid partition table entry at +{pos:#x}",
                              "the board has no ESP-IDF partition table at 0x8000; flash "
                              "firmware built with one (with a 'model' data partition)")
        name = label.split(b"\x00", 1)[0].decode("ascii", "replace")
        parts.append(Partition(name, ptype, subtype, offset, size, flags))
    if not parts:
        raise DeviceError("the partition table is empty",
                          "flash firmware with an ESP-IDF partition table first")
    return parts


def find_partition(parts: list[Partition], label: str) -> Partition:
    for part in parts:
        if part.label == label:
            return part
    names = ", ".join(p.label for p in parts)
    raise DeviceError(f"the board has no partition named {label!r} (it has: {names})",
                      f"build the firmware with a data partition labelled '{label}', "
                      "or pass --dest LABEL|0xOFFSET")


def app_partition(parts: list[Partition]) -> Partition:
    """Where a firmware image goes: the factory app, else the first OTA slot."""
    apps = [p for p in parts if p.is_app]
    for wanted in (APP_FACTORY, APP_OTA_MIN):
        for part in apps:
            if part.subtype == wanted:
                return part
    if apps:
        return apps[0]
    raise DeviceError("the partition table has no app partition",
                      "pass the firmware offset with --dest 0x10000")
