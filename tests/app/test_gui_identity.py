"""Identity before trust: a reconnect is to the board the user chose, not to a path.

A board that comes back at another path is followed; another board at the old path is
listed but never connected to (and a message names both); the status line never names a
port that is not in the device list.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from app.board_identity import BoardIdentity, same_board


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_same_board_rules() -> None:
    a = BoardIdentity(serial="E661", hw_id="E661", board="nrf52840dk", model_sha256="aa")
    assert same_board(a, a) is True
    assert same_board(a, BoardIdentity(serial="F00D", board="nrf52840dk",
                                       model_sha256="aa")) is False  # lookalike, other serial
    assert same_board(a, BoardIdentity(hw_id="F00D")) is False
    # the serial decides over the model: the same board, reflashed elsewhere
    assert same_board(a, BoardIdentity(serial="E661", model_sha256="bb")) is True
    # no serial, no id: another kind of board or another model is another board
    plain = BoardIdentity(board="nano33ble", model_sha256="aa")
    assert same_board(plain, BoardIdentity(board="nano33ble", model_sha256="bb")) is False
    assert same_board(plain, BoardIdentity(board="esp32s3", model_sha256="aa")) is False
    assert same_board(plain, BoardIdentity(board="nano33ble", model_sha256="aa")) is True
    assert same_board(None, plain) is None
    assert same_board(BoardIdentity(), BoardIdentity()) is None
    assert "SN E661" in a.describe() and "/dev" not in a.describe()


def test_virtual_boards_have_an_identity_that_survives_a_restart(tmp_path) -> None:
    from device_drivers.boards import load_registry, scan
    from device_drivers.virtual.board import VirtualBoard

    one = VirtualBoard(board="nano33ble", state_dir=tmp_path / "one", tcp_port=_free_port())
    two = VirtualBoard(board="nano33ble", state_dir=tmp_path / "two", tcp_port=_free_port())
    with one, two:
        assert one.serial and two.serial and one.serial != two.serial
        listed = {b.port: b.serial_number for b in scan(load_registry())}
        assert listed[one.port] == one.serial and listed[two.port] == two.serial
        first = one.serial
        from device_drivers.link import DeviceSession

        with DeviceSession.open(one.port) as session:
            assert session.model_info().hw_id == first  # the device says who it is
    again = VirtualBoard(board="nano33ble", state_dir=tmp_path / "one", tcp_port=_free_port())
    with again:
        assert again.serial == first  # --state keeps the identity


def _port_texts(text: str) -> list[str]:
    return re.findall(r"(socket://[\w.:]+|/dev/\S+)", text)


@pytest.mark.timeout(120)
def test_a_board_is_followed_to_a_new_path_and_a_stranger_at_the_old_path_is_not_trusted(
        qtbot, make_window, tmp_path) -> None:
    from device_drivers.virtual.board import VirtualBoard

    old, new = _free_port(), _free_port()
    ours = VirtualBoard(board="nano33ble", state_dir=tmp_path / "ours", tcp_port=old,
                        serial="VBOURS01")
    ours.start()
    win = make_window()  # the real detection: the boards announce themselves
    qtbot.waitUntil(lambda: win.devices.entry(ours.port) is not None, timeout=10000)
    win.connect_port(ours.port)
    dash = win.live.dashboard
    qtbot.waitUntil(lambda: win.link.state == "connected" and "latency_us" in dash.channels(),
                    timeout=20000)
    assert win.link.identity.serial == "VBOURS01" and win.link.identity.hw_id == "VBOURS01"
    old_port = ours.port
    warnings: list[str] = []
    win.link.stranger.connect(lambda _port, msg: warnings.append(msg))

    ours.stop()  # unplugged
    qtbot.waitUntil(lambda: win.link.outage is not None, timeout=5000)
    qtbot.waitUntil(lambda: win.devices.entry(old_port) is None, timeout=5000)
    status = win.status.link_label.text()
    assert old_port not in status and "VBOURS01" in status  # names the board, not a path

    other = VirtualBoard(board="nano33ble", state_dir=tmp_path / "other", tcp_port=old,
                         serial="VBOTHER2")
    other.start()  # another board of the same kind, same model, at the old path
    try:
        qtbot.waitUntil(lambda: any(e.serial == "VBOTHER2" for e in win.devices.devices()),
                        timeout=10000)  # listed …
        qtbot.waitUntil(lambda: bool(warnings), timeout=10000)  # … tried, and refused
        assert "VBOTHER2" in warnings[0] and "VBOURS01" in warnings[0]
        n = len(dash.channel_data("latency_us")[0])
        qtbot.wait(1500)
        assert win.link.state != "connected" and win.link.outage is not None
        assert len(dash.channel_data("latency_us")[0]) == n  # none of its data
        assert not dash.live
        listed = {e.port for e in win.devices.devices()}
        for port in _port_texts(win.status.link_label.text()):
            assert port in listed

        back = VirtualBoard(board="nano33ble", state_dir=tmp_path / "ours", tcp_port=new)
        back.start()  # our board, re-enumerated at another path
        try:
            t0 = time.monotonic()
            qtbot.waitUntil(lambda: win.link.state == "connected"
                            and win.link.port == back.port, timeout=10000)
            assert time.monotonic() - t0 < 5.0
            assert win.devices.selected().port == back.port
            qtbot.waitUntil(lambda: len(dash.channel_data("latency_us")[0]) > n + 3,
                            timeout=10000)
            assert f"connected to {back.port}" in win.status.link_label.text()
            assert win.link.identity.serial == "VBOURS01"
        finally:
            win.link.disconnect_port()
            back.stop()
    finally:
        other.stop()
