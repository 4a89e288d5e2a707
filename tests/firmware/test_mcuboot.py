"""MCUboot on real Zephyr 4.4 firmware: image list, test/confirm, a swap flash, serial recovery.

qemu_cortex_m0_serial: MCUboot swap with test/confirm (no bootloader-info command: the mode
comes from the image list). mps2_an385_serial_recovery_buf1024: an application that resets
into MCUboot serial recovery (boot_mode), a RAM-load image. QEMU writes its ``-device
loader`` images again at every reset, so the recovery flash uses the shipped image.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import zephyr_fixtures as zephyr

from app.cli import main
from device_drivers.flashing.mcuboot import open_session
from device_drivers.flashing.smp import upload_image
from device_drivers.mcuboot_image import check_image

M0 = "qemu_cortex_m0_serial"
RECOVERY = "mps2_an385_serial_recovery_buf1024"


def _shipped(fw: zephyr.Firmware) -> Path:
    # the fixture's own ``.signed.bin`` (its ``.hex``/``.merged.hex`` sibling)
    name = re.sub(r"\.(merged\.)?hex$", ".signed.bin", fw.spec.entry["artifact"])
    return zephyr.fixtures_dir() / name


def _image(capsys: pytest.CaptureFixture[str], *cli: str) -> dict:
    code = main(["image", *cli, "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out.strip().splitlines()[-1])


def _list_until(capsys: pytest.CaptureFixture[str], port: str, ready, timeout_s: float = 90.0
                ) -> dict:
    """``image list`` polled (a reset board answers again after a while) until ``ready``."""
    deadline = time.monotonic() + timeout_s
    while True:
        code = main(["image", "list", "--port", port, "--json"])
        captured = capsys.readouterr()
        out = json.loads(captured.out.strip().splitlines()[-1]) if captured.out else {}
        if code == 0 and ready(out):
            return out
        assert time.monotonic() < deadline, f"never ready: {captured.err or out}"
        time.sleep(0.3)


def _slot(out: dict, slot: int) -> dict:
    return next(s for s in out["slots"] if s["slot"] == slot)


def _resigned(shipped: bytes, images, version: str) -> bytes:
    """The shipped application signed again with another version (so another hash)."""
    check = check_image(shipped)
    body = shipped[check.header_size: check.header_size + check.image_size]
    return images.build(body, version, header_size=check.header_size)


def test_the_shipped_images_pass_the_host_checks() -> None:
    for name in (M0, RECOVERY):
        spec = zephyr.manifest()[name]
        path = zephyr.fixtures_dir() / re.sub(r"\.(merged\.)?hex$", ".signed.bin",
                                              spec.entry["artifact"])
        check = check_image(path.read_bytes(), path.name)
        assert check.hash_algo == "sha256" and check.header_size == 0x200
    assert "ram-load" in check.flags  # the mps2 recovery build boots from RAM


def test_image_list_and_a_test_confirm_round_trip_on_qemu_m0(firmware, capsys,
                                                             mcuboot_images) -> None:
    fw = firmware(M0)
    shipped = _shipped(fw).read_bytes()
    out = _image(capsys, "list", "--port", fw.port)
    slot0 = _slot(out, 0)
    assert slot0["hash"] == check_image(shipped).hash
    assert slot0["active"] and slot0["confirmed"]
    assert out["bootloader"]["mode"] == "unknown"  # no bootloader-info in this build
    assert out["bootloader"]["source"] == "image list"

    new = _resigned(shipped, mcuboot_images, "1.0.2")
    want = check_image(new).hash
    with open_session(fw.port, timeout_s=3.0) as dev:
        upload_image(dev, new, lambda f, m: None, None, timeout_scale=3.0)
    out = _image(capsys, "test", "--port", fw.port)  # default: the image in the spare slot
    assert out["hash"] == want and _slot(out, 1)["pending"]
    _image(capsys, "reset", "--port", fw.port)
    # the board answers again once MCUboot swapped the images and booted the new one
    slot0 = _slot(_list_until(capsys, fw.port, lambda out: True), 0)
    assert slot0["hash"] == want and slot0["version"] == "1.0.2" and not slot0["confirmed"]
    out = _image(capsys, "confirm", "--port", fw.port)  # default: the running image
    assert out["hash"] == want and _slot(out, 0)["confirmed"]


def test_a_swap_flash_on_qemu_m0(firmware, capsys, tmp_path: Path, mcuboot_images) -> None:
    fw = firmware(M0)
    path = tmp_path / "app-1.1.0.signed.bin"
    path.write_bytes(_resigned(_shipped(fw).read_bytes(), mcuboot_images, "1.1.0"))
    started = time.monotonic()
    code = main(["flash", str(path), "--port", fw.port, "--json", "--timeout-scale", "3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["verified"] and result["device_digest"] == check_image(path.read_bytes()).hash
    assert "tested, booted and confirmed" in result["notes"]
    print(f"swap flash of {result['bytes']} B: {time.monotonic() - started:.1f} s")
    slot0 = _slot(_image(capsys, "list", "--port", fw.port), 0)
    assert slot0["version"] == "1.1.0" and slot0["confirmed"] and slot0["active"]


def test_image_list_in_mcuboot_serial_recovery(firmware, capsys) -> None:
    fw = firmware(RECOVERY)
    want = check_image(_shipped(fw).read_bytes()).hash
    app = _image(capsys, "list", "--port", fw.port)
    assert _slot(app, 0)["active"]
    _image(capsys, "reset", "--bootloader", "--port", fw.port)
    boot = _list_until(capsys, fw.port,
                       lambda out: out["bootloader"]["mode"] == "serial-recovery")
    slot0 = _slot(boot, 0)
    assert slot0["hash"] == want and slot0["active"] is None  # recovery lists no state
    _image(capsys, "reset", "--port", fw.port)  # back into the application
    app = _list_until(capsys, fw.port, lambda out: out["bootloader"]["mode"] == "unknown")
    assert _slot(app, 0)["hash"] == want and _slot(app, 0)["active"]


def test_flash_through_serial_recovery(firmware, capsys, tmp_path: Path) -> None:
    """--enter-recovery: the application resets into MCUboot, the image goes to slot 0,
    its hash is checked there, and the application answers after the reset."""
    fw = firmware(RECOVERY)
    shipped = _shipped(fw)
    started = time.monotonic()
    code = main(["flash", str(shipped), "--port", fw.port, "--enter-recovery", "--json",
                 "--timeout-scale", "3"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert result["verified"] and result["device_digest"] == check_image(shipped.read_bytes()).hash
    assert any("serial-recovery" in note for note in result["notes"])
    print(f"recovery flash of {result['bytes']} B: {time.monotonic() - started:.1f} s")
    app = _image(capsys, "list", "--port", fw.port)
    assert app["bootloader"]["mode"] != "serial-recovery" and _slot(app, 0)["active"]
