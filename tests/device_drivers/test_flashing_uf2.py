"""uf2 back end: the UF2 parser (against esptool's independent UF2 writer), and a flash to
a fake mounted bootloader drive (a temp dir with INFO_UF2.TXT) whose "bootloader" parses
the written file back, then the board (a virtual board) verifies through its runtime."""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
from pathlib import Path

import pytest
from esptool.uf2_writer import UF2Writer
from hypothesis import given, settings
from hypothesis import strategies as st

from device_drivers import paths
from device_drivers.errors import DeviceError, InputError
from device_drivers.flashing import Artifact, FlashOptions, flash
from device_drivers.flashing.uf2 import Uf2Backend
from device_drivers.link.session import DeviceSession
from device_drivers.virtual import VirtualBoard
from fleet_ops.records import open_store
from fleet_ops.records.device_ops import record_flash
from tinyops_base.uf2 import parse_uf2

BASE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()
PICO_FAMILY = 0xE48BFF56
PICO_REGION = 0x10100000


def make_uf2(data: bytes, address: int, family: int, md5: bool = True) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.uf2")
        with UF2Writer(family, out, None, md5_enabled=md5) as writer:
            writer.add_file(address, data)
        return Path(out).read_bytes()


def decode_uf2(raw: bytes) -> dict[int, bytes]:
    """The UF2 spec, read independently of the parser under test: address → payload."""
    out = {}
    for i in range(0, len(raw), 512):
        start0, start1, _flags, addr, size, _no, _n, _fam = struct.unpack_from("<8I", raw, i)
        assert (start0, start1) == (0x0A324655, 0x9E5D5157)
        assert struct.unpack_from("<I", raw, i + 508)[0] == 0x0AB16F30
        out[addr] = raw[i + 32:i + 32 + size]
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- the parser
@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=1, max_size=5000), address=st.integers(0, 2**31),
       family=st.integers(0, 2**32 - 1), md5=st.booleans())
def test_parse_reads_back_what_esptool_wrote(data: bytes, address: int, family: int,
                                            md5: bool) -> None:
    image = parse_uf2(make_uf2(data, address, family, md5))
    assert image.family_id == family
    assert image.span == (address, address + len(data))
    assert image.read(address, len(data)) == data
    assert image.segments() == [(address, data)]


@settings(max_examples=40, deadline=None)
@given(data=st.binary(min_size=600, max_size=3000), where=st.integers(0, 10_000))
def test_any_damaged_magic_or_md5_is_refused(data: bytes, where: int) -> None:
    raw = bytearray(make_uf2(data, 0x1000, PICO_FAMILY))
    block = (where % (len(raw) // 512)) * 512
    size = struct.unpack_from("<I", raw, block + 16)[0]
    kind = where % 4
    field = [0, 508, 32 + where % size, 32 + size + 8 + where % 16][kind]
    raw[block + field] ^= 0x40
    with pytest.raises(InputError, match="magic" if kind < 2 else "MD5"):
        parse_uf2(bytes(raw))


def test_truncated_or_misnumbered_files_are_refused() -> None:
    raw = make_uf2(os.urandom(3000), 0x1000, PICO_FAMILY)
    with pytest.raises(InputError, match="multiple of 512"):
        parse_uf2(raw[:-100])
    with pytest.raises(InputError, match="truncated"):
        parse_uf2(raw[:-512])
    with pytest.raises(InputError, match="empty"):
        parse_uf2(b"")


# ---------------------------------------------------------------- a fake drive and bootloader
class FakeBootloader(threading.Thread):
    """Plays the UF2 bootloader and the MCU: waits for a complete .uf2 on the drive,
    decodes it, "writes flash" (the model region: the virtual board loads it, as the runtime
    would read its model region at boot), then reboots (the drive goes away)."""

    def __init__(self, drive: Path, port: str, region: int, accept: bool = True) -> None:
        super().__init__(daemon=True)
        self.drive, self.port, self.region, self.accept = drive, port, region, accept
        self.received: bytes | None = None
        self.written_name: str | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.05):
            for path in self.drive.glob("*.uf2"):
                raw = path.read_bytes()
                if not raw or len(raw) % 512:
                    continue
                total = struct.unpack_from("<I", raw, 24)[0]
                if len(raw) != total * 512:
                    continue  # still being written
                blocks = decode_uf2(raw)
                data = b"".join(blocks[a] for a in sorted(blocks))
                assert min(blocks) == self.region
                self.received, self.written_name = data, path.name
                if not self.accept:
                    return
                # "write flash" and boot the runtime with it, then reset (the drive goes
                # away): the flasher waits for the drive to go before it polls the port, so
                # the port is never shared — as on a board, where the new firmware boots
                # without the host's help
                with DeviceSession.open(self.port) as dev:
                    dev.upload_file(data, "/lfs/model.tflite")
                    dev.load_model("/lfs/model.tflite", sha256=hashlib.sha256(data).digest())
                (self.drive / "INFO_UF2.TXT").unlink()
                path.unlink()
                return


@pytest.fixture
def drive(tmp_path: Path) -> Path:
    d = tmp_path / "RPI-RP2"
    d.mkdir()
    (d / "INFO_UF2.TXT").write_text("UF2 Bootloader v3.0\nModel: Raspberry Pi RP2\n"
                                    "Board-ID: RPI-RP2\n")
    return d


def test_flash_to_a_fake_drive_then_verify_on_the_runtime(drive: Path) -> None:
    new = BASE + b"\x00" * 32
    uf2 = make_uf2(new, PICO_REGION, PICO_FAMILY)
    with VirtualBoard(board="virtual") as vb:
        loader = FakeBootloader(drive, vb.port, PICO_REGION)
        loader.start()
        art = Artifact.from_bytes(uf2, "model.uf2", model_sha256=sha(new))
        result = flash(art, vb.port, options=FlashOptions(board="pico", dest=str(drive),
                                                           reboot_timeout_s=20),
     recorder=record_flash)
        loader.join(5)
        assert loader.received == new  # the file parsed back is the model, at the region
        assert loader.written_name == "model.uf2"
        assert result.ok and result.backend == "uf2"
        assert result.device_digest == result.local_digest == sha(new)
        assert result.previous_sha256 == sha(BASE)
        assert vb.loaded_model_sha256 == sha(new)
    rec = open_store().list()[0]
    assert rec.backend == "uf2" and rec.result == "ok" and rec.artifact_sha256 == sha(uf2)


def test_drive_is_discovered_by_info_uf2(drive: Path) -> None:
    backend = Uf2Backend(find_drives=lambda: [drive])
    with VirtualBoard(board="virtual") as vb:
        new = BASE + b"\x00" * 48
        loader = FakeBootloader(drive, vb.port, PICO_REGION)
        loader.start()
        art = Artifact.from_bytes(make_uf2(new, PICO_REGION, PICO_FAMILY), "m.uf2",
                                  model_sha256=sha(new))
        result = flash(art, vb.port, backend=backend,
                       options=FlashOptions(board="pico", reboot_timeout_s=20),
     recorder=record_flash)
        assert result.ok and vb.loaded_model_sha256 == sha(new)


def test_wrong_family_is_refused_before_writing(drive: Path) -> None:
    art = Artifact.from_bytes(make_uf2(BASE, 0x2000, 0xADA52840), "m.uf2",
                              model_sha256=sha(BASE))
    with pytest.raises(InputError, match="family"):
        flash(art, "/dev/null", options=FlashOptions(board="pico", dest=str(drive)),
              recorder=record_flash)
    assert not list(drive.glob("*.uf2"))


def test_a_dir_without_info_uf2_is_not_a_drive(tmp_path: Path) -> None:
    art = Artifact.from_bytes(make_uf2(BASE, PICO_REGION, PICO_FAMILY), "m.uf2",
                              model_sha256=sha(BASE))
    with pytest.raises(InputError, match="INFO_UF2"):
        flash(art, "/dev/null", options=FlashOptions(board="pico", dest=str(tmp_path)),
              recorder=record_flash)


def test_bootloader_that_does_not_reboot_is_an_error(drive: Path) -> None:
    new = BASE + b"\x00" * 64
    with VirtualBoard(board="virtual") as vb:
        loader = FakeBootloader(drive, vb.port, PICO_REGION, accept=False)
        loader.start()
        art = Artifact.from_bytes(make_uf2(new, PICO_REGION, PICO_FAMILY), "m.uf2",
                                  model_sha256=sha(new))
        with pytest.raises(DeviceError, match="still there"):
            flash(art, vb.port, options=FlashOptions(board="pico", dest=str(drive),
                                                     reboot_timeout_s=1.0), recorder=record_flash)
        assert vb.loaded_model_sha256 == sha(BASE)


def test_unknown_model_digest_cannot_be_verified(drive: Path) -> None:
    art = Artifact.from_bytes(make_uf2(BASE, PICO_REGION, PICO_FAMILY), "m.uf2")
    with pytest.raises(InputError, match="cannot verify"):
        flash(art, "/dev/null", options=FlashOptions(board="pico", dest=str(drive)),
              recorder=record_flash)
