"""The board registry: shipped data valid and cited, user boards, schema checks that bite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_drivers import paths
from device_drivers.boards import get_board, load_registry, registry_problems
from device_drivers.boards.registry import RegistryError, parse_file
from device_drivers.boards.schema import validate
from device_drivers.errors import InputError

MUST_HAVE = {
    "nano33ble", "nano33ble_sense_rev2", "nano_rp2040_connect", "nano_esp32", "portenta_h7",
    "nicla_vision", "pico", "pico_w", "pico2", "esp32_devkitc", "esp32s3_devkitc",
    "esp32c3_devkitm", "esp32c6_devkitc", "xiao_esp32s3", "xiao_nrf52840_sense", "xiao_rp2040",
    "wio_terminal", "feather_nrf52840_sense", "feather_rp2040", "feather_esp32s3",
    "sparkfun_edge", "redboard_artemis", "nucleo_f746zg", "disco_l475_iot01a", "nrf52840dk",
    "microbit_v2", "bridge_cp210x", "bridge_ch340", "bridge_ch9102", "bridge_ftdi",
    "bridge_pl2303", "virtual",
}


def _schema() -> dict:
    return json.loads((paths.resources_dir() / "boards" / "schema.json").read_text())


def _minimal(**over) -> dict:
    board = {"id": "myboard", "name": "My board", "vendor": "Me", "mcu": "nRF52840",
             "flash": 1048576, "ram": 262144, "backend": "smp",
             "usb": [{"vid": "1209", "pid": "0001", "mode": "app", "source": "pid.codes"}],
             "runtime_reserve": {"flash": 200000, "ram": 40000, "basis": "estimate"}}
    board.update(over)
    return board


def test_registry_has_thirty_real_boards_and_the_must_haves() -> None:
    boards = load_registry(strict=True)
    ids = {b.id for b in boards}
    assert ids >= MUST_HAVE, MUST_HAVE - ids
    assert sum(b.kind == "board" for b in boards) >= 30
    assert len(ids) == len(boards)


def test_every_usb_id_is_cited_and_boards_are_consistent() -> None:
    for board in load_registry(strict=True):
        assert board.backend in ("smp", "uf2", "esp", "arduino", "virtual")
        for usb in board.usb:
            assert len(usb.source) > 8, (board.id, usb)
            assert 0 < usb.vid <= 0xFFFF and 0 <= usb.pid <= 0xFFFF
        if board.backend == "uf2":
            assert board.uf2_family is not None and board.model_region is not None
            assert board.uf2_board_ids, board.id
        if board.backend == "esp":
            assert board.partition
        if board.backend == "arduino":
            assert board.fqbn and board.fqbn.count(":") >= 2
        if board.kind == "board":
            assert board.flash > board.runtime_reserve.flash > 0
            assert board.ram > board.runtime_reserve.ram > 0


def test_known_ids_match_their_public_sources() -> None:
    """Spot checks against the cited sources (values read from them, not from our code)."""
    def ids(board_id: str, mode: str) -> set[str]:
        return {f"{u.vid:04x}:{u.pid:04x}" for u in get_board(board_id).usb if u.mode == mode}

    assert "2341:805a" in ids("nano33ble", "app")
    assert "2341:005a" in ids("nano33ble", "bootloader")
    assert "2e8a:0003" in ids("pico", "bootloader")
    assert "2e8a:000f" in ids("pico2", "bootloader")
    assert "2886:002d" in ids("wio_terminal", "bootloader")
    assert "239a:0087" in ids("feather_nrf52840_sense", "bootloader")
    assert get_board("pico").uf2_family == 0xE48BFF56
    assert get_board("pico2").uf2_family == 0xE48BFF59
    assert get_board("wio_terminal").uf2_family == 0x55114460
    assert get_board("feather_nrf52840_sense").uf2_family == 0xADA52840


def test_get_board_unknown_id_suggests_close_ones() -> None:
    with pytest.raises(InputError) as info:
        get_board("nano33bl")
    assert info.value.exit_code == 2
    assert "nano33ble" in info.value.hint


def test_user_board_is_added_and_overrides_a_shipped_one() -> None:
    folder = paths.config_dir() / "boards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mine.json").write_text(json.dumps({"boards": [
        _minimal(),
        _minimal(id="pico", name="My patched Pico", backend="uf2", uf2_family="0xe48bff56",
                 uf2_board_ids=["RPI-RP2"],
                 model_region={"address": "0x10100000", "size": 524288}),
    ]}))
    boards = {b.id: b for b in load_registry()}
    assert boards["myboard"].usb[0].vid == 0x1209
    assert boards["pico"].name == "My patched Pico"
    assert boards["pico"].origin.endswith("mine.json")
    assert registry_problems() == []


def test_a_bare_board_object_is_accepted_as_a_user_file() -> None:
    folder = paths.config_dir() / "boards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "one.json").write_text(json.dumps(_minimal(id="solo")))
    assert "solo" in {b.id for b in load_registry()}


def test_broken_user_file_is_skipped_and_reported(tmp_path: Path) -> None:
    folder = paths.config_dir() / "boards"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bad.json").write_text(json.dumps({"boards": [_minimal(backend="jtag")]}))
    (folder / "notjson.json").write_text("{oops")
    boards = load_registry()
    assert "myboard" not in {b.id for b in boards} and len(boards) > 30
    problems = registry_problems()
    assert len(problems) == 2
    assert any("jtag" in p for p in problems)
    assert any("not valid JSON" in p for p in problems)
    with pytest.raises(RegistryError):
        load_registry(strict=True)


@pytest.mark.parametrize(("change", "expected"), [
    ({"backend": "uf2"}, "needs 'uf2_family'"),
    ({"backend": "esp"}, "needs 'partition'"),
    ({"backend": "arduino"}, "needs 'fqbn'"),
    ({"runtime_reserve": {"flash": 2_000_000, "ram": 1, "basis": "x y"}}, "exceeds flash"),
    ({"usb": [{"vid": "2341", "pid": "805A", "mode": "app", "source": "boards.txt"}]},
     "does not match"),
    ({"usb": [{"vid": "2341", "pid": "805a", "mode": "sleep", "source": "boards.txt"}]},
     "not one of"),
    ({"colour": "red"}, "unknown field 'colour'"),
    ({"flash": -1}, "below 0"),
    ({"flash": True}, "expected integer"),
])
def test_schema_and_rules_reject_bad_boards(tmp_path: Path, change: dict, expected: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"boards": [_minimal(**change)]}))
    with pytest.raises(RegistryError) as info:
        parse_file(path)
    assert any(expected in p for p in info.value.problems), info.value.problems
    assert info.value.exit_code == 2 and "b.json" in info.value.hint


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    board = _minimal()
    del board["runtime_reserve"]
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"boards": [board]}))
    with pytest.raises(RegistryError, match="runtime_reserve"):
        parse_file(path)


@given(st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8),
                                                       st.booleans(), st.none()), max_size=6))
def test_validator_never_crashes_and_flags_junk(data: dict) -> None:
    problems = validate({"boards": [data]}, _schema())
    assert problems  # a random dict is never a valid board (required fields are missing)


def test_validator_rejects_unknown_schema_keywords() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        validate({}, {"type": "object", "oneOf": []})


def test_udev_rule_covers_every_registry_usb_id() -> None:
    rules = (paths.resources_dir().parent / "packaging" / "linux" / "60-tinyops.rules")
    text = rules.read_text()
    assert 'TAG+="uaccess"' in text
    for board in load_registry(strict=True, include_user=False):
        for usb in board.usb:
            needle = f'ATTRS{{idVendor}}=="{usb.vid:04x}", ATTRS{{idProduct}}=="{usb.pid:04x}"'
            assert needle in text, (board.id, usb)
    for line in text.splitlines():
        if line and not line.startswith("#"):
            assert line.count('"') % 2 == 0, line
