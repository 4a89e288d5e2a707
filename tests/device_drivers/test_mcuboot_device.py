"""MCUboot on the device (virtual board): mode detection, the flash per mode, refusals
before the upload, and the host check before the port."""

from __future__ import annotations

import pytest
from smp import os_management as osm

from device_drivers.errors import InputError
from device_drivers.flashing import Artifact, FlashOptions, flash, mcuboot
from device_drivers.link.session import DeviceSession
from device_drivers.mcuboot_image import check_image
from device_drivers.virtual import VirtualBoard


def board_in_mode(mode: int) -> VirtualBoard:
    """A virtual board whose MCUboot reports ``mode`` (its slots still swap)."""

    class Board(VirtualBoard):
        def _build_dispatcher(self):  # type: ignore[no-untyped-def]
            d = super()._build_dispatcher()

            def info(req: osm.BootloaderInformationReadRequest) -> object:
                response = None if req.query is None else {"mode": mode}
                return osm.BootloaderInformationReadResponse(bootloader="MCUboot",
                                                             response=response)

            d.add(osm.BootloaderInformationReadRequest, info)
            return d

    return Board(board="virtual")


def _slots(port: str) -> list[mcuboot.Slot]:
    with DeviceSession.open(port) as dev:
        return mcuboot.list_slots(dev)


def test_the_virtual_board_reports_swap() -> None:
    with VirtualBoard(board="virtual") as vb, DeviceSession.open(vb.port) as dev:
        info = mcuboot.detect_mode(dev)
    assert (info.mode, info.source, info.mode_code) == ("swap", "bootloader-info", 1)


@pytest.mark.parametrize(("code", "mode"), [(2, "overwrite-only"), (4, "direct-xip"),
                                            (5, "direct-xip-revert"), (6, "ram-load"),
                                            (0, "single-app"), (3, "swap")])
def test_bootloader_info_maps_every_mode(code: int, mode: str) -> None:
    with board_in_mode(code) as vb, DeviceSession.open(vb.port) as dev:
        assert mcuboot.bootloader_info(dev).mode == mode


def test_single_app_is_refused_before_the_upload(mcuboot_images) -> None:
    with board_in_mode(0) as vb:
        data = mcuboot_images.build(version="2.0.0")
        with pytest.raises(InputError, match="single application slot mode") as err:
            flash(Artifact.from_bytes(data, "app.signed.bin"), vb.port)
        assert "--enter-recovery" in (err.value.hint or "")
        assert [s.slot for s in _slots(vb.port)] == [0]  # nothing was uploaded


def test_direct_xip_refuses_an_image_that_is_not_newer(mcuboot_images) -> None:
    with board_in_mode(4) as vb:
        running = _slots(vb.port)[0].version  # the factory image, 1.0.0
        data = mcuboot_images.build(version=running)
        with pytest.raises(InputError, match="boots the highest version"):
            flash(Artifact.from_bytes(data, "app.signed.bin"), vb.port)
        assert [s.slot for s in _slots(vb.port)] == [0]


def test_overwrite_only_is_flashed_without_test_and_confirm(mcuboot_images) -> None:
    with board_in_mode(2) as vb:
        data = mcuboot_images.build(bytes(range(256)) * 30, "2.0.0")
        result = flash(Artifact.from_bytes(data, "app.signed.bin"), vb.port,
                       options=FlashOptions(reboot_timeout_s=10))
        assert result.verified and result.device_digest == check_image(data).hash
        assert any("no test/confirm" in n for n in result.notes)
        slot0 = _slots(vb.port)[0]
        assert slot0.hash == check_image(data).hash and slot0.active


def test_a_running_image_is_only_skipped_when_it_passes_the_host_check(mcuboot_images) -> None:
    with VirtualBoard(board="virtual") as vb:
        data = mcuboot_images.build(bytes(range(256)) * 30, "2.0.0")
        artifact = Artifact.from_bytes(data, "app.signed.bin")
        assert flash(artifact, vb.port, options=FlashOptions(reboot_timeout_s=10)).verified
        again = flash(artifact, vb.port)
        assert again.verified and "already running: nothing to do" in again.notes
        tampered = bytearray(data)
        tampered[0x300] ^= 1  # body changed, stored SHA TLV still equals the running hash
        before = vb.bytes_rx
        with pytest.raises(InputError, match="fails its SHA256 check"):
            flash(Artifact.from_bytes(bytes(tampered), "app.signed.bin"), vb.port)
        assert vb.bytes_rx == before


def test_recovery_is_recognised_from_the_image_list() -> None:
    app = mcuboot.Slot(0, 0, "1.0.0", "ab" * 32, True, True, True, False, False)
    boot = mcuboot.Slot(0, 0, "1.0.0", "ab" * 32, None, None, None, None, None)
    assert not mcuboot.looks_like_recovery([app]) and mcuboot.looks_like_recovery([boot])
    assert not mcuboot.looks_like_recovery([])
    assert mcuboot.active_slot([boot]) == boot  # recovery marks none active: slot 0


def test_enter_recovery_on_a_board_that_cannot_says_how(mcuboot_images) -> None:
    """The virtual board's reset ignores boot_mode: it comes back in its application, and
    the flash stops there (nothing uploaded) with the way to enter recovery by hand."""
    from device_drivers.errors import DeviceError

    with VirtualBoard(board="virtual") as vb:
        data = mcuboot_images.build(version="2.0.0")
        with pytest.raises(DeviceError, match="came back in its application") as err:
            flash(Artifact.from_bytes(data, "app.signed.bin"), vb.port,
                  options=FlashOptions(reboot_timeout_s=10, extra={"enter_recovery": True}))
        assert "recovery button" in (err.value.hint or "")
        assert [s.slot for s in _slots(vb.port)] == [0]
