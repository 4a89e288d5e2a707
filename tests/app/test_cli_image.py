"""CLI: `tinyops image …` and `tinyops flash IMAGE` (host checks, --key), virtual board."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.cli import main
from device_drivers.flashing.smp import upload_image
from device_drivers.link.session import DeviceSession
from device_drivers.mcuboot_image import check_image
from device_drivers.virtual import VirtualBoard


@pytest.fixture
def board():
    with VirtualBoard(board="virtual") as vb:
        yield vb


def _image(cli: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    code = main(["image", *cli, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    return code, json.loads(out[-1])


def _upload(port: str, data: bytes) -> None:
    with DeviceSession.open(port) as dev:
        assert upload_image(dev, data, lambda f, m: None, None) is True


def _slots(out: dict) -> dict[int, dict]:
    return {s["slot"]: s for s in out["slots"]}


def test_list_shows_slots_and_the_swap_mode(board, capsys) -> None:
    code, out = _image(["list", "--port", board.port], capsys)
    assert code == 0 and out["ok"]
    assert out["bootloader"]["mode"] == "swap"
    assert out["bootloader"]["source"] == "bootloader-info"
    slot0 = _slots(out)[0]
    assert slot0["active"] and slot0["confirmed"] and len(slot0["hash"]) == 64
    main(["image", "list", "--port", board.port])
    text = capsys.readouterr().out
    assert "MCUboot mode  swap" in text and slot0["hash"] in text


def test_test_reset_confirm_round_trip(board, capsys, mcuboot_images) -> None:
    data = mcuboot_images.build(bytes(range(256)) * 30, "2.0.1")
    want = check_image(data).hash
    _upload(board.port, data)
    code, out = _image(["test", "--port", board.port], capsys)  # default: the spare slot
    assert code == 0 and out["hash"] == want and _slots(out)[1]["pending"]
    assert _image(["reset", "--port", board.port], capsys)[0] == 0
    code, out = _image(["list", "--port", board.port], capsys)
    slot0 = _slots(out)[0]
    assert slot0["hash"] == want and slot0["version"] == "2.0.1" and not slot0["confirmed"]
    code, out = _image(["confirm", "--port", board.port], capsys)  # default: the running one
    assert code == 0 and out["hash"] == want and _slots(out)[0]["confirmed"]
    code, out = _image(["erase", "--port", board.port], capsys)
    assert code == 0 and 1 not in _slots(out)


def test_refusals_are_one_line_errors(board, capsys, mcuboot_images) -> None:
    assert main(["image", "test", "--port", board.port]) == 2  # nothing in the spare slot
    err = capsys.readouterr().err
    assert "no image waits in a spare slot" in err and "Traceback" not in err
    assert main(["image", "confirm", "ab" * 32, "--port", board.port]) == 1
    err = capsys.readouterr().err
    assert "refused to confirm abababab" in err and "HASH_NOT_FOUND" in err
    assert main(["image", "erase", "--slot", "0", "--port", board.port]) == 1
    assert "refused to erase slot 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["image", "test", "xyz", "--port", board.port])
    assert exc.value.code == 2
    assert "is not an image hash" in capsys.readouterr().err


class NoImageBoard(VirtualBoard):
    """A Zephyr SMP server built without the img group."""

    def _build_dispatcher(self):  # type: ignore[no-untyped-def]
        d = super()._build_dispatcher()
        for key in [k for k in d.routes if k[0] == 1]:
            del d.routes[key]
        return d


def test_a_missing_image_group_says_so_without_a_cable_hint(capsys) -> None:
    with NoImageBoard(board="virtual") as vb:
        assert main(["image", "list", "--port", vb.port]) == 1
    err = capsys.readouterr().err
    assert "no image management group (MCUmgr img)" in err
    assert "CONFIG_MCUMGR_GRP_IMG" in err and "cable" not in err


# ---------------------------------------------------------------- flash IMAGE
def test_a_tampered_image_is_refused_before_any_byte_is_sent(board, capsys, tmp_path: Path,
                                                            mcuboot_images) -> None:
    data = mcuboot_images.build(bytes(range(256)) * 30, "2.0.0")
    good = tmp_path / "app.signed.bin"
    good.write_bytes(data)
    assert main(["flash", str(good), "--port", board.port, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verified"]
    # same SHA TLV as the image that now runs, body changed: not "already running"
    bad = bytearray(data)
    bad[0x200 + 10] ^= 0xFF
    tampered = tmp_path / "tampered.signed.bin"
    tampered.write_bytes(bytes(bad))
    before = board.bytes_rx
    assert main(["flash", str(tampered), "--port", board.port]) == 2
    err = capsys.readouterr().err
    assert "fails its SHA256 check" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert board.bytes_rx == before  # the board saw no traffic at all


def test_a_truncated_image_never_opens_the_port(capsys, tmp_path: Path, mcuboot_images) -> None:
    cut = tmp_path / "cut.signed.bin"
    cut.write_bytes(mcuboot_images.build()[:-20])
    # a port nobody listens on: opening it would be a port error, not the image's
    assert main(["flash", str(cut), "--port", "socket://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "cut.signed.bin" in err and "truncated" in err and "127.0.0.1" not in err


def test_flash_checks_the_signature_with_key(board, capsys, tmp_path: Path,
                                             mcuboot_images) -> None:
    key = mcuboot_images.key()
    path = tmp_path / "signed.bin"
    path.write_bytes(mcuboot_images.build(bytes(range(256)) * 20, "3.0.0", key=key))
    before = board.bytes_rx
    assert main(["flash", str(path), "--port", board.port,
                 "--key", str(mcuboot_images.key("other"))]) == 2
    assert "signature does not match other.pem" in capsys.readouterr().err
    assert board.bytes_rx == before
    assert main(["flash", str(path), "--port", board.port, "--json",
                 "--key", str(mcuboot_images.public_key())]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verified"] and any("signature verified" in n for n in out["notes"])
    assert any("MCUboot mode: swap" in n for n in out["notes"])


def test_key_is_refused_for_a_model(board, capsys, tmp_path: Path) -> None:
    from device_drivers import paths

    model = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"
    assert main(["flash", str(model), "--port", board.port, "--key", "k.pem"]) == 2
    assert "apply to MCUboot images" in capsys.readouterr().err
