"""Identification from list_ports records, including the tricky cases real hosts produce."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serial.tools.list_ports_common import ListPortInfo

from device_drivers.boards import PortRecord, detect_serial, identify, load_registry, scan
from device_drivers.boards.detect import overall_mode


@pytest.fixture(scope="module")
def registry():
    return load_registry(include_user=False)


def port(device: str, vid: int | None = None, pid: int | None = None, serial: str | None = None,
         product: str | None = None, manufacturer: str | None = None,
         hwid: str | None = None) -> ListPortInfo:
    """A real pyserial ListPortInfo, filled in as the OS back ends do."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial
    info.product, info.manufacturer = product, manufacturer
    if product:
        info.description = product
    if hwid is not None:
        info.hwid = hwid
    elif vid is not None:
        info.hwid = info.usb_info()
    return info


def top(registry, info) -> tuple[str, str, float]:
    cands = identify(PortRecord.from_port(info), registry)
    return cands[0].board.id, overall_mode(cands), cands[0].confidence


def test_unique_app_id_is_identified_with_high_confidence(registry) -> None:
    board, mode, conf = top(registry, port("/dev/ttyACM0", 0x239A, 0x8087, "AB12",
                                           "Feather nRF52840 Sense", "Adafruit"))
    assert (board, mode) == ("feather_nrf52840_sense", "app")
    assert conf > 0.9


def test_same_board_in_bootloader_mode_has_its_own_id(registry) -> None:
    board, mode, _ = top(registry, port("/dev/ttyACM0", 0x239A, 0x0087, "AB12"))
    assert (board, mode) == ("feather_nrf52840_sense", "bootloader")
    board, mode, _ = top(registry, port("/dev/ttyACM0", 0x2886, 0x002D))
    assert (board, mode) == ("wio_terminal", "bootloader")


def test_id_shared_by_app_and_a_bootloader_without_serial_port_means_app(registry) -> None:
    # 2e8a:000f is the RP2350 boot ROM (mass storage + PICOBOOT, no tty) *and* arduino-pico's
    # Pico 2 application id: a serial port with it can only be the application.
    cands = identify(PortRecord.from_port(port("/dev/ttyACM0", 0x2E8A, 0x000F, "E66", "Pico 2")),
                     registry)
    assert cands[0].board.id == "pico2"
    assert overall_mode(cands) == "app"


def test_same_id_in_app_and_rom_download_mode_is_unknown_mode(registry) -> None:
    # ESP32-S3 USB-Serial/JTAG: 303a:1001 in the application and in ROM download mode.
    info = port("/dev/ttyACM0", 0x303A, 0x1001, "F4:12:FA:00:11:22",
                "USB JTAG/serial debug unit", "Espressif")
    cands = identify(PortRecord.from_port(info), registry)
    assert cands[0].board.id == "espressif_usb_jtag"
    assert overall_mode(cands) == "unknown"
    ids = [c.board.id for c in cands]
    assert {"esp32s3_devkitc", "xiao_esp32s3", "esp32c3_devkitm"} <= set(ids)


def test_pico_sdk_id_is_told_apart_by_the_product_string(registry) -> None:
    pico = top(registry, port("/dev/ttyACM0", 0x2E8A, 0x000A, "E6614103", "Pico", "Raspberry Pi"))
    xiao = top(registry, port("/dev/ttyACM1", 0x2E8A, 0x000A, "E6614104", "XIAO RP2040", "Seeed"))
    assert pico[0] == "pico" and xiao[0] == "xiao_rp2040"
    assert pico[2] > 0.8 and xiao[2] > 0.8
    unknown = identify(PortRecord.from_port(port("/dev/ttyACM2", 0x2E8A, 0x000A)), registry)
    assert {c.board.id for c in unknown[:3]} == {"pico", "pico_w", "xiao_rp2040"}
    assert len({round(c.confidence, 6) for c in unknown[:3]}) == 1  # a fair tie
    assert unknown[0].confidence < pico[2]


def test_the_same_bridge_on_different_boards_is_an_unknown_board_behind_it(registry) -> None:
    info = port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "CP2102N USB to UART Bridge Controller",
                "Silicon Labs")
    cands = identify(PortRecord.from_port(info), registry)
    assert cands[0].board.id == "bridge_cp210x"
    assert cands[0].board.is_bridge
    boards_behind = [c for c in cands[1:] if c.board.kind == "board"]
    assert {"esp32_devkitc", "spresense"} <= {c.board.id for c in boards_behind}
    assert all(c.confidence < cands[0].confidence for c in boards_behind)
    ch340 = identify(PortRecord.from_port(port("/dev/ttyUSB1", 0x1A86, 0x7523)), registry)
    assert ch340[0].board.id == "bridge_ch340"
    assert {"sparkfun_edge", "redboard_artemis", "artemis_nano"} <= {c.board.id for c in ch340}


def test_two_identical_boards_are_two_entries_with_their_serials(registry) -> None:
    found = detect_serial([port("/dev/ttyACM0", 0x2341, 0x805A, "SER-A", "Nano 33 BLE"),
                           port("/dev/ttyACM1", 0x2341, 0x805A, "SER-B", "Nano 33 BLE")],
                          registry)
    assert [d.port for d in found] == ["/dev/ttyACM0", "/dev/ttyACM1"]
    assert [d.serial_number for d in found] == ["SER-A", "SER-B"]
    assert {d.board.id for d in found} <= {"nano33ble", "nano33ble_sense_rev2"}
    assert found[0].identity != found[1].identity
    assert all(d.mode == "app" for d in found)


def test_missing_vid_falls_back_to_the_hwid_then_to_strings(registry) -> None:
    # Windows sometimes leaves vid/pid empty but keeps the PnP id in hwid.
    win = port("COM7", hwid="USB\\VID_2341&PID_805A&MI_00\\6&1234")
    assert top(registry, win)[0] in ("nano33ble", "nano33ble_sense_rev2")
    # No ids at all: the product string still tells.
    bare = port("/dev/cu.usbmodem1101", product="Arduino Nano 33 BLE", manufacturer="Arduino")
    board, mode, conf = top(registry, bare)
    assert board in ("nano33ble", "nano33ble_sense_rev2")
    assert 0.3 < conf < 0.6
    assert mode == "unknown"  # its bootloader has a serial port too: strings cannot tell
    bridge = top(registry, port("COM3", product="Silicon Labs CP210x USB to UART Bridge (COM3)"))
    assert bridge[0] == "bridge_cp210x"


def test_unknown_usb_device_has_no_candidates_and_non_usb_ports_are_skipped(registry) -> None:
    found = detect_serial([port("/dev/ttyS0"), port("/dev/ttyACM5", 0x1234, 0x5678, "X")],
                          registry)
    assert [d.port for d in found] == ["/dev/ttyACM5"]
    assert found[0].board is None and found[0].mode == "unknown"
    assert found[0].to_dict()["usb_id"] == "1234:5678"
    assert len(detect_serial([port("/dev/ttyS0")], registry, include_all=True)) == 1


def test_dfu_only_bootloader_id_never_matches_a_serial_port(registry) -> None:
    # Portenta's 2341:035b is its DFU bootloader: no tty. A tty with it is nothing we know.
    assert identify(PortRecord.from_port(port("/dev/ttyACM0", 0x2341, 0x035B)), registry) == []


def test_scan_merges_ports_with_aliases(registry) -> None:
    from device_drivers.boards import set_alias

    set_alias("SER-A", "line-3-left")
    found = scan(registry, ports=[port("/dev/ttyACM0", 0x2341, 0x805A, "SER-A")],
                 uf2_roots=[], virtual_dir=None)
    assert found[0].alias == "line-3-left"
    assert found[0].to_dict()["alias"] == "line-3-left"


@given(vid=st.integers(0, 0xFFFF), pid=st.integers(0, 0xFFFF),
       product=st.one_of(st.none(), st.text(max_size=30)))
def test_identify_is_total_and_ranked(vid: int, pid: int, product: str | None) -> None:
    registry = load_registry(include_user=False)
    cands = identify(PortRecord.from_port(port("/dev/x", vid, pid, product=product)), registry)
    confs = [c.confidence for c in cands]
    assert confs == sorted(confs, reverse=True)
    assert all(0 < c <= 1 for c in confs)
    for c in cands:
        assert any(u.vid == vid and u.pid == pid for u in c.board.usb)
