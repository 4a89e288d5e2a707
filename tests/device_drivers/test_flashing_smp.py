"""smp back end against the virtual board (a real SMP server on a real pty): model files,
stock Zephyr servers, MCUboot images with test/confirm/revert."""

from __future__ import annotations

import hashlib
import threading

import pytest
from smpclient.requests import image_management as imgreq
from smpclient.requests import os_management as osreq

from device_drivers import paths
from device_drivers.errors import Cancelled, DeviceError, InputError
from device_drivers.flashing import Artifact, FlashOptions, flash
from device_drivers.flashing.smp import image_hash, upload_image
from device_drivers.link.session import DeviceSession
from device_drivers.virtual import VirtualBoard
from fleet_ops.records import open_store
from fleet_ops.records.device_ops import record_flash

BASE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()


def variant(n: int) -> bytes:
    """A different, still valid model: the bundled one with n zero bytes appended (a
    FlatBuffer ignores bytes after its last table; the digest changes)."""
    return BASE + b"\x00" * (16 * n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class StockZephyrBoard(VirtualBoard):
    """A stock Zephyr SMP server: os, img and fs groups, no TinyOps runtime group."""

    def _build_dispatcher(self):  # type: ignore[no-untyped-def]
        d = super()._build_dispatcher()
        for key in [k for k in d.routes if k[0] == 64]:
            del d.routes[key]
        return d


@pytest.fixture
def board():
    with VirtualBoard(board="virtual") as vb:
        yield vb


def test_model_flash_is_loaded_verified_and_recorded(board: VirtualBoard) -> None:
    new = variant(1)
    seen: list[tuple[float, str]] = []
    result = flash(Artifact.from_bytes(new, "new.tflite"), board.port,
                   progress=lambda f, m: seen.append((f, m)), recorder=record_flash)
    assert result.ok and result.verified and result.backend == "smp"
    assert result.local_digest == result.device_digest == sha(new)
    assert result.previous_sha256 == sha(BASE)
    # A file of its own beside the runtime's default_path: the old model's file stays intact.
    assert result.dest == "/lfs/model-a.tflite"
    assert board.loaded_model_sha256 == sha(new)
    with DeviceSession.open(board.port) as dev:
        assert dev.file_sha256("/lfs/model.tflite").hex() == sha(BASE)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen) and seen[-1][0] == 1.0
    rec = open_store().list()[0]
    assert (rec.operation, rec.result, rec.backend, rec.artifact_sha256) == (
        "flash", "ok", "smp", sha(new))
    assert rec.verify == f"sha256 match: device {sha(new)}"
    assert rec.details["previous_sha256"] == sha(BASE)


def test_destination_is_configurable(board: VirtualBoard) -> None:
    new = variant(2)
    result = flash(Artifact.from_bytes(new, "b.tflite"), board.port,
                   options=FlashOptions(dest="/lfs/models/b.tflite"), recorder=record_flash)
    assert result.dest == "/lfs/models/b.tflite"
    with DeviceSession.open(board.port) as dev:
        info = dev.model_info()
        assert info is not None and info.path == "/lfs/models/b.tflite"
        assert dev.file_sha256("/lfs/models/b.tflite").hex() == sha(new)


def test_a_file_the_runtime_refuses_leaves_the_previous_model(board: VirtualBoard) -> None:
    junk = b"\x1c\x00\x00\x00TFL3" + b"\xab" * 3000  # uploads fine, is no valid model
    with pytest.raises(DeviceError, match="BAD_MODEL") as info:
        flash(Artifact.from_bytes(junk, "junk.tflite"), board.port, recorder=record_flash)
    assert board.loaded_model_sha256 == sha(BASE)
    assert info.value.result.ok is False  # type: ignore[attr-defined]
    assert open_store().list()[0].result == "failed"


def test_cancel_mid_upload_leaves_the_previous_model(board: VirtualBoard) -> None:
    cancel = threading.Event()
    big = BASE + b"\x00" * 40_000

    def progress(fraction: float, message: str) -> None:
        if fraction > 0.2:
            cancel.set()

    with pytest.raises(Cancelled):
        flash(Artifact.from_bytes(big, "big.tflite"), board.port, progress=progress,
              cancel=cancel, recorder=record_flash)
    assert board.loaded_model_sha256 == sha(BASE)
    assert open_store().list()[0].result == "cancelled"


def test_stock_zephyr_server_gets_the_file_verified_by_fs_hash() -> None:
    with StockZephyrBoard(board="virtual") as vb:
        new = variant(3)
        result = flash(Artifact.from_bytes(new, "new.tflite"), vb.port,
                       options=FlashOptions(dest="/lfs/tinyml/model.bin"), recorder=record_flash)
        assert result.ok and result.device_digest == sha(new)
        assert any("stock SMP server" in n for n in result.notes)
        assert result.previous_sha256 is None
        with DeviceSession.open(vb.port) as dev:
            assert dev.model_info() is None
            assert dev.file_sha256("/lfs/tinyml/model.bin").hex() == sha(new)


def test_wrong_artifact_kind_is_bad_input(board: VirtualBoard) -> None:
    with pytest.raises(InputError):
        flash(Artifact.from_bytes(b"UF2\n" * 200, "x.uf2", kind="uf2"), board.port,
              backend="smp", recorder=record_flash)


# ---------------------------------------------------------------- MCUboot images
def _states(port: str) -> list:
    with DeviceSession.open(port) as dev:
        return dev.request(imgreq.ImageStatesRead()).images


def test_image_hash_reads_the_sha256_tlv(mcuboot_images) -> None:
    body = bytes(range(256)) * 20
    image = mcuboot_images.build(body)
    assert image_hash(image) == hashlib.sha256(image[:0x200 + len(body)]).digest()
    with pytest.raises(InputError, match="MCUboot"):
        image_hash(b"\x3d\xb8\xf3\x96" + b"\x00" * 60)


def test_image_is_uploaded_tested_booted_and_confirmed(board: VirtualBoard,
                                                       mcuboot_images) -> None:
    before = _states(board.port)[0].hash.hex()
    image = mcuboot_images.build(bytes(range(256)) * 40)
    want = image_hash(image).hex()
    result = flash(Artifact.from_bytes(image, "app.signed.bin"), board.port,
                   options=FlashOptions(reboot_timeout_s=10), recorder=record_flash)
    assert result.ok and result.device_digest == want and result.previous_sha256 == before
    slot0 = _states(board.port)[0]
    assert slot0.hash.hex() == want and slot0.confirmed and slot0.active
    # confirmed: another reset keeps it
    with DeviceSession.open(board.port) as dev:
        dev.request(osreq.ResetWrite())
    assert _states(board.port)[0].hash.hex() == want


def test_image_chunks_fill_the_device_buffer(board: VirtualBoard, mcuboot_images) -> None:
    """Chunks are sized from the device's MCUmgr params (public smpclient sizing): every
    chunk but the last nearly fills the SMP buffer, and the device's sha256 matches."""
    image = mcuboot_images.build(bytes(range(256)) * 60)
    offsets: list[int] = []
    with DeviceSession.open(board.port) as dev:
        buf_size = dev.params()["buf_size"]
        match = upload_image(dev, image, lambda f, m: offsets.append(int(m.split("/")[0])),
                             None)
    assert match is True and offsets[-1] == len(image)
    sizes = [b - a for a, b in zip([0, *offsets[:-1]], offsets, strict=True)]
    assert len(sizes) >= 3 and all(0 < s <= buf_size for s in sizes)
    assert all(s >= buf_size - 128 for s in sizes[:-1])  # SMP header + CBOR keys only


def test_unconfirmed_image_is_reverted_by_mcuboot(mcuboot_images) -> None:
    """The new firmware answers SMP but not the runtime: TinyOps does not confirm it, and
    the next reset brings the previous firmware back."""
    with StockZephyrBoard(board="virtual") as vb:
        before = _states(vb.port)[0].hash.hex()
        image = mcuboot_images.build(bytes(range(200)) * 30, "2.0.0")
        with pytest.raises(DeviceError, match="did not answer"):
            flash(Artifact.from_bytes(image, "app.signed.bin"), vb.port,
                  options=FlashOptions(reboot_timeout_s=1.5, extra={"require_runtime": True}),
     recorder=record_flash)
        slot0 = _states(vb.port)[0]
        assert slot0.hash.hex() == image_hash(image).hex() and not slot0.confirmed
        with DeviceSession.open(vb.port) as dev:
            dev.request(osreq.ResetWrite())
        assert _states(vb.port)[0].hash.hex() == before  # MCUboot reverted


def test_runtime_models_alternate_between_two_files(board: VirtualBoard) -> None:
    """Never over the running model's file, and never more than two model files."""
    dests = []
    for i in range(3, 8):
        data = variant(i)
        result = flash(Artifact.from_bytes(data, f"m{i}.tflite"), board.port, recorder=record_flash)
        assert board.loaded_model_sha256 == sha(data)
        dests.append(result.dest)
    assert dests == ["/lfs/model-a.tflite", "/lfs/model-b.tflite"] * 2 + ["/lfs/model-a.tflite"]
    with DeviceSession.open(board.port) as dev:
        assert dev.file_sha256("/lfs/model-b.tflite").hex() == sha(variant(6))


def test_a_flashed_model_carries_its_cards_labels(board: VirtualBoard, tmp_path) -> None:
    """The runtime reports the class names of the model card beside the file (only a card
    whose sha256 is this model's), else of labels.txt beside it."""
    import json

    model = tmp_path / "m.tflite"
    model.write_bytes(variant(2))
    (tmp_path / "labels.txt").write_text("x\ny\nz\n")
    card = tmp_path / "m.tflite.card.json"
    card.write_text(json.dumps({"sha256": sha(variant(2)), "labels": ["calm", "wobble", "knock"]}))
    flash(Artifact.load(model), board.port, recorder=record_flash)
    with DeviceSession.open(board.port) as dev:
        assert list(dev.model_info().labels) == ["calm", "wobble", "knock"]

    model.write_bytes(variant(3))  # the card now describes another model: not trusted
    flash(Artifact.load(model), board.port, recorder=record_flash)
    with DeviceSession.open(board.port) as dev:
        assert list(dev.model_info().labels) == ["x", "y", "z"]
