"""UF2 bootloader drives: INFO_UF2.TXT parsing, discovery under mount roots, identification."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers.boards import find_uf2_drives, load_registry, parse_info_uf2, scan
from device_drivers.boards.uf2 import detect_uf2, identify_uf2, read_info

# Texts as the bootloaders write them (RP2040 boot ROM, Adafruit nRF52, uf2-samdx1, RP2350).
RP2040 = "UF2 Bootloader v3.0\r\nModel: Raspberry Pi RP2\r\nBoard-ID: RPI-RP2\r\n"
FEATHER_SENSE = ("UF2 Bootloader 0.6.0 lib/nrfx (v2.0.0) lib/tinyusb (0.10.1-41-gdf0cda2d)\n"
                 "Model: Adafruit Feather nRF52840 Sense\nBoard-ID: nRF52840-Feather-Sense\n"
                 "SoftDevice: S140 version 6.1.1\nDate: Dec 21 2020\n")
WIO = "UF2 Bootloader v3.7.0 SFHWRO\nModel: Wio Terminal\nBoard-ID: SAMD51P19A-WioTerminal-v0\n"
RP2350 = "UF2 Bootloader v1.0\nModel: Raspberry Pi RP2350\nBoard-ID: RP2350\n"


@pytest.fixture(scope="module")
def registry():
    return load_registry(include_user=False)


def make_drive(root: Path, name: str, text: str) -> Path:
    drive = root / name
    drive.mkdir(parents=True)
    (drive / "INFO_UF2.TXT").write_text(text)
    (drive / "INDEX.HTM").write_text("<html></html>")
    return drive


def test_parse_rp2040_info() -> None:
    fields = parse_info_uf2(RP2040)
    assert fields["banner"] == "UF2 Bootloader v3.0"
    assert fields["Model"] == "Raspberry Pi RP2"
    assert fields["Board-ID"] == "RPI-RP2"


def test_parse_keeps_colons_in_values_and_family() -> None:
    fields = parse_info_uf2("TinyUF2 Bootloader 0.18.1\nModel: X\nBoard-ID: A:B\n"
                            "Family-ID: 0xc47e5767\nDate: Jan 1 2024\n")
    assert fields["Board-ID"] == "A:B"
    assert fields["Date"] == "Jan 1 2024"


@given(st.text(max_size=300))
def test_parse_never_raises(text: str) -> None:
    fields = parse_info_uf2(text)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@given(st.dictionaries(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,15}", fullmatch=True),
                       st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,30}", fullmatch=True),
                       max_size=6))
def test_parse_round_trips_key_value_lines(data: dict[str, str]) -> None:
    text = "UF2 Bootloader v1\n" + "".join(f"{k}: {v}\n" for k, v in data.items())
    fields = parse_info_uf2(text)
    for key, value in data.items():
        assert fields[key] == value.strip()


def test_drives_found_under_media_style_roots(tmp_path: Path, registry) -> None:
    make_drive(tmp_path / "media" / "alice", "RPI-RP2", RP2040)
    make_drive(tmp_path / "media" / "alice", "FTHRSNSBOOT", FEATHER_SENSE)
    (tmp_path / "media" / "alice" / "USBSTICK").mkdir()  # a plain stick: not UF2
    make_drive(tmp_path / "Volumes", "Arduino", WIO)
    roots = [str(tmp_path / "media" / "*"), str(tmp_path / "media" / "*" / "*"),
             str(tmp_path / "Volumes" / "*")]
    drives = find_uf2_drives(roots)
    assert sorted(Path(d.path).name for d in drives) == ["Arduino", "FTHRSNSBOOT", "RPI-RP2"]
    found = {Path(d.port).name: d for d in detect_uf2(drives, registry)}
    assert found["FTHRSNSBOOT"].board.id == "feather_nrf52840_sense"
    assert found["FTHRSNSBOOT"].confidence > 0.9
    assert found["Arduino"].board.id == "wio_terminal"
    assert all(d.mode == "bootloader" and d.source == "uf2" for d in found.values())
    rp2 = {c.board.id for c in found["RPI-RP2"].candidates}
    assert {"pico", "pico_w", "xiao_rp2040", "feather_rp2040", "nano_rp2040_connect"} == rp2
    assert "pico2" not in rp2


def test_rp2350_drive_is_a_pico2(tmp_path: Path, registry) -> None:
    drive = make_drive(tmp_path, "RP2350", RP2350)
    info = read_info(drive)
    assert info is not None and info.board_id == "RP2350"
    assert {c.board.id for c in identify_uf2(info, registry)} == {"pico2", "pico2_w"}


def test_family_narrows_and_unknown_board_id_falls_back_to_family(tmp_path: Path,
                                                                   registry) -> None:
    drive = make_drive(tmp_path, "X", "UF2 Bootloader\nBoard-ID: SomethingNew\n"
                                      "Family-ID: 0xada52840\n")
    cands = identify_uf2(read_info(drive), registry)
    assert cands and all(c.board.uf2_family == 0xADA52840 for c in cands)
    assert all(c.confidence < 0.5 for c in cands)


def test_unreadable_or_missing_info_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "EMPTY").mkdir()
    assert read_info(tmp_path / "EMPTY") is None
    assert find_uf2_drives([str(tmp_path / "*"), str(tmp_path / "nope")]) == []


def test_scan_includes_uf2_drives(tmp_path: Path, registry) -> None:
    make_drive(tmp_path, "XIAO-SENSE", "UF2 Bootloader 0.7.0\nModel: Seeed XIAO nRF52840\n"
                                       "Board-ID: nRF52840-SeeedXiaoSense-v1\n")
    found = scan(registry, ports=[], uf2_roots=[str(tmp_path / "*")])
    assert len(found) == 1
    assert found[0].board.id == "xiao_nrf52840_sense"
    assert found[0].to_dict()["details"]["uf2"]["board_id"] == "nRF52840-SeeedXiaoSense-v1"
