"""esp back end: partition tables, write/verify sequencing, cancel, faults.

Hardware is replaced at esptool's loader boundary only: ``FakeLoader`` simulates a flash
chip behind the stub flasher's commands (compressed begin/block/finish, MD5, read). The
partition table is built here from the ESP-IDF binary format spec (not by the parser under
test). What is NOT covered without hardware: esptool's serial protocol against a real ROM,
the DTR/RTS reset sequences and baud changes, and real flash timing.
"""

from __future__ import annotations

import hashlib
import os
import struct
import threading
import zlib

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from device_drivers.errors import (
    Cancelled,
    DeviceError,
    DisconnectedError,
    InputError,
    PortError,
    VerifyError,
)
from device_drivers.flashing.base import Artifact, FlashOptions
from device_drivers.flashing.esp import EspBackend, esptool_connect
from device_drivers.flashing.esp_partitions import parse_partition_table

TFLITE = b"\x1c\x00\x00\x00TFL3" + os.urandom(10_000)  # looks like a model, incompressible


# ---------------------------------------------------------------- table builder (the spec)
_TYPES = {"app": 0, "data": 1}
_SUBTYPES = {"factory": 0x00, "ota_0": 0x10, "ota_1": 0x11, "ota": 0x00, "phy": 0x01,
             "nvs": 0x02, "spiffs": 0x82, "undefined": 0x06}


def build_table(rows: list[tuple[str, str, str, int, int, int]], md5: bool = True) -> bytes:
    """CSV-like rows (name, type, subtype, offset, size, flags) → binary, per ESP-IDF docs."""
    out = b""
    for name, ptype, subtype, offset, size, flags in rows:
        out += b"\xaa\x50" + bytes([_TYPES[ptype], _SUBTYPES[subtype]])
        out += struct.pack("<II", offset, size) + name.encode().ljust(16, b"\x00")
        out += struct.pack("<I", flags)
    if md5:
        out += b"\xeb\xeb" + b"\xff" * 14 + hashlib.md5(out).digest()
    return out.ljust(0xC00, b"\xff")


DEFAULT_ROWS = [
    ("nvs", "data", "nvs", 0x9000, 0x6000, 0),
    ("phy_init", "data", "phy", 0xF000, 0x1000, 0),
    ("factory", "app", "factory", 0x10000, 0x100000, 0),
    ("model", "data", "undefined", 0x110000, 0x40000, 0),
]


class FakeLoader:
    """The stub flasher as esptool's loader methods see it, over a simulated flash chip."""

    CHIP_NAME = "ESP32-S3"
    IS_STUB = True
    FLASH_WRITE_SIZE = 0x400

    def __init__(self, table: bytes, size: int = 0x400000) -> None:
        self.flash = bytearray(b"\xff" * size)
        self.flash[0x8000:0x8000 + len(table)] = table
        self.timeouts: list[float] = []
        self.calls: list[str] = []
        self.resets = 0
        self.fail_on_seq: int | None = None
        self.corrupt_offset: int | None = None
        self.closed = False
        self._port = self

    def close(self) -> None:
        self.closed = True

    def read_flash(self, offset: int, length: int, progress_fn=None) -> bytes:
        self.calls.append("read")
        return bytes(self.flash[offset:offset + length])

    def flash_defl_begin(self, size: int, compsize: int, offset: int,
                         encrypted_write: bool = False) -> int:
        self.calls.append("begin")
        self._inflate = zlib.decompressobj()
        self._addr = offset
        self._seq = 0
        self._size = size
        return (compsize + self.FLASH_WRITE_SIZE - 1) // self.FLASH_WRITE_SIZE

    def flash_defl_block(self, data: bytes, seq: int, timeout: float = 3.0) -> None:
        self.calls.append("block")
        assert seq == self._seq, "blocks must arrive in sequence"
        assert len(data) <= self.FLASH_WRITE_SIZE
        if self.fail_on_seq == seq:
            raise serial.SerialException("device reports readiness to read but returned no data")
        self.timeouts.append(timeout)
        out = self._inflate.decompress(data)
        self.flash[self._addr:self._addr + len(out)] = out
        self._addr += len(out)
        self._seq += 1

    def flash_defl_finish(self, reboot: bool = False, timeout: float = 3.0) -> None:
        self.calls.append("finish")
        if self.corrupt_offset is not None:
            self.flash[self.corrupt_offset] ^= 0x01  # a bit that did not program

    def flash_md5sum(self, addr: int, size: int) -> str:
        self.calls.append("md5")
        return hashlib.md5(self.flash[addr:addr + size]).hexdigest()

    def uses_usb_jtag_serial(self) -> bool:
        return False

    def hard_reset(self, uses_usb: bool = False) -> None:
        self.calls.append("reset")
        self.resets += 1


def _backend(loader: FakeLoader) -> EspBackend:
    return EspBackend(connect=lambda port, options: loader)


def _progress_log() -> tuple[list[tuple[float, str]], object]:
    seen: list[tuple[float, str]] = []
    return seen, lambda f, m: seen.append((f, m))


# ---------------------------------------------------------------- partition tables
def test_parse_default_table() -> None:
    parts = parse_partition_table(build_table(DEFAULT_ROWS))
    assert [(p.label, p.type, p.subtype, p.offset, p.size) for p in parts] == [
        ("nvs", 1, 2, 0x9000, 0x6000), ("phy_init", 1, 1, 0xF000, 0x1000),
        ("factory", 0, 0, 0x10000, 0x100000), ("model", 1, 6, 0x110000, 0x40000)]


def test_table_md5_mismatch_is_caught() -> None:
    table = bytearray(build_table(DEFAULT_ROWS))
    table[5] ^= 0xFF  # damage the first entry's offset
    with pytest.raises(DeviceError, match="MD5"):
        parse_partition_table(bytes(table))


def test_blank_flash_has_no_table() -> None:
    with pytest.raises(DeviceError, match="partition table"):
        parse_partition_table(b"\xff" * 0xC00)
    with pytest.raises(DeviceError, match="no ESP-IDF partition table"):
        parse_partition_table(b"\x00" * 0xC00)


_label = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=16)


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(_label, st.sampled_from(["app", "data"]),
                               st.sampled_from(sorted(_SUBTYPES)),
                               st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
                               st.integers(0, 3)), min_size=1, max_size=40),
       md5=st.booleans())
def test_any_table_parses_back(rows, md5: bool) -> None:
    parts = parse_partition_table(build_table(rows, md5=md5))
    assert [(p.label, p.offset, p.size, p.flags) for p in parts] == [
        (r[0], r[3], r[4], r[5]) for r in rows]


# ---------------------------------------------------------------- write and verify
def test_model_goes_into_the_model_partition_and_is_md5_verified() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    seen, progress = _progress_log()
    art = Artifact.from_bytes(TFLITE, "m.tflite")
    result = _backend(loader).flash(art, "/dev/ttyUSB0", FlashOptions(), progress, None)
    assert result.ok and result.verified and result.backend == "esp"
    assert result.digest_algo == "md5"
    assert result.local_digest == result.device_digest == hashlib.md5(TFLITE).hexdigest()
    assert bytes(loader.flash[0x110000:0x110000 + len(TFLITE)]) == TFLITE
    assert loader.calls[0] == "read" and loader.calls[-2:] == ["md5", "reset"]
    assert result.dest == "model@0x110000"
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert sum("writing at" in m for _, m in seen) >= 3  # per-block progress
    assert loader.closed


def test_unaligned_model_is_padded_like_esptool() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    data = TFLITE + b"\x01\x02\x03"
    result = _backend(loader).flash(Artifact.from_bytes(data, "m.tflite"), "p", FlashOptions(),
                                    lambda f, m: None, None)
    padded = data + b"\xff"
    assert result.device_digest == hashlib.md5(padded).hexdigest()
    assert bytes(loader.flash[0x110000:0x110000 + len(padded)]) == padded


def test_firmware_image_goes_to_the_factory_app() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    image = bytes([0xE9, 0x03, 0x02, 0x20]) + os.urandom(5000)
    art = Artifact.from_bytes(image, "app.bin")
    assert art.kind == "esp-image"
    result = _backend(loader).flash(art, "p", FlashOptions(), lambda f, m: None, None)
    assert result.dest == "factory@0x10000"
    assert bytes(loader.flash[0x10000:0x10000 + len(image)]) == image


def test_dest_offset_and_label() -> None:
    loader = FakeLoader(build_table([*DEFAULT_ROWS, ("model2", "data", "spiffs", 0x200000,
                                                     0x10000, 0)]))
    art = Artifact.from_bytes(TFLITE, "m.tflite")
    r = _backend(loader).flash(art, "p", FlashOptions(dest="model2"), lambda f, m: None, None)
    assert r.dest == "model2@0x200000"
    r = _backend(loader).flash(art, "p", FlashOptions(dest="0x300000"), lambda f, m: None, None)
    assert bytes(loader.flash[0x300000:0x300000 + len(TFLITE)]) == TFLITE


def test_block_timeouts_scale_with_size() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    loader.FLASH_WRITE_SIZE = 0x4000
    big = os.urandom(200_000)  # incompressible: several 16 KiB blocks
    _backend(loader).flash(Artifact.from_bytes(big, "m.tflite", kind="model"), "p",
                           FlashOptions(), lambda f, m: None, None)
    assert loader.timeouts[0] == 3.0  # first block: the stub has nothing pending
    assert all(t >= 3.0 for t in loader.timeouts)
    assert max(loader.timeouts) > 3.0


@pytest.mark.parametrize("rows,match", [
    ([r for r in DEFAULT_ROWS if r[0] != "model"], "no partition named 'model'"),
    ([*DEFAULT_ROWS[:3], ("model", "data", "undefined", 0x110000, 0x1000, 0)], "does not fit"),
    ([*DEFAULT_ROWS[:3], ("model", "data", "undefined", 0x110000, 0x40000, 1)], "encrypted"),
    ([*DEFAULT_ROWS[:3], ("model", "app", "ota_0", 0x110000, 0x40000, 0)], "not data"),
])
def test_refusals_happen_before_any_write(rows, match: str) -> None:
    loader = FakeLoader(build_table(rows))
    with pytest.raises((InputError, DeviceError), match=match):
        _backend(loader).flash(Artifact.from_bytes(TFLITE, "m.tflite"), "p", FlashOptions(),
                               lambda f, m: None, None)
    assert "begin" not in loader.calls and "block" not in loader.calls


def test_a_bit_that_did_not_program_fails_verification() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    loader.corrupt_offset = 0x110000 + 1234
    with pytest.raises(VerifyError, match="does not match"):
        _backend(loader).flash(Artifact.from_bytes(TFLITE, "m.tflite"), "p", FlashOptions(),
                               lambda f, m: None, None)
    assert loader.resets == 0  # not rebooted into a bad model
    assert loader.closed


def test_lost_link_mid_write_is_a_disconnect_error() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    loader.fail_on_seq = 3
    with pytest.raises(DisconnectedError, match="lost p"):
        _backend(loader).flash(Artifact.from_bytes(TFLITE, "m.tflite"), "p", FlashOptions(),
                               lambda f, m: None, None)
    assert "md5" not in loader.calls


def test_cancel_stops_within_one_block() -> None:
    loader = FakeLoader(build_table(DEFAULT_ROWS))
    cancel = threading.Event()
    blocks_at_cancel: list[int] = []

    def progress(fraction: float, message: str) -> None:
        if "writing at" in message and not cancel.is_set():
            cancel.set()
            blocks_at_cancel.append(loader.calls.count("block"))

    with pytest.raises(Cancelled):
        _backend(loader).flash(Artifact.from_bytes(os.urandom(20_000), "m.tflite",
                                                   kind="model"), "p", FlashOptions(),
                               progress, cancel)
    assert loader.calls.count("block") == blocks_at_cancel[0]  # no block after the cancel
    assert "md5" not in loader.calls and loader.resets == 0


# ---------------------------------------------------------------- the real esptool connect
def test_real_esptool_on_a_missing_port_says_so() -> None:
    with pytest.raises(PortError, match="does not exist"):
        esptool_connect("/dev/ttyTINYOPS_NOPE", FlashOptions())


def test_real_esptool_on_a_silent_port_gives_a_fix() -> None:
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        with pytest.raises(DeviceError, match="ROM bootloader") as info:
            esptool_connect(name, FlashOptions(reset="no-reset",
                                               extra={"connect_attempts": 1}))
        assert "BOOT" in (info.value.hint or "")
    finally:
        os.close(master)
        os.close(slave)
