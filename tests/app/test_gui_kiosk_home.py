"""The kiosk always comes home: from the demo board to any board that returns, real or
virtual, within 5 s of its return; the demo board then stops."""

from __future__ import annotations

import time

import pytest


@pytest.mark.timeout(120)
def test_the_kiosk_leaves_the_demo_for_a_virtual_board_that_returns(
        qtbot, make_window, tmp_path, monkeypatch) -> None:
    from app.gui import homing
    from device_drivers.virtual.board import VirtualBoard

    monkeypatch.setattr(homing, "KIOSK_DEMO_AFTER_MS", 1000)  # a long outage, shortened
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "b")
    board.start()
    win = make_window(kiosk=True)
    qtbot.waitUntil(lambda: win.link.state == "connected" and win.link.port == board.port,
                    timeout=20000)
    assert win.live.dashboard.base_interval_ms == 40  # a stand draws 25 frames/s
    assert win.live.dashboard.lean_axes  # and time values on the big plot only
    board.stop()  # the outage outlasts the fallback delay: the demo board takes over
    qtbot.waitUntil(lambda: win.demo.running and win.link.port == win.demo.port
                    and win.link.state == "connected", timeout=30000)
    demo_port = win.demo.port

    back = VirtualBoard(board="nano33ble", state_dir=tmp_path / "b")  # the board returns
    back.start()
    try:
        t0 = time.monotonic()
        qtbot.waitUntil(lambda: win.link.state == "connected" and win.link.port == back.port,
                        timeout=10000)
        took = time.monotonic() - t0
        assert took < 5.0, f"home after {took:.1f} s"
        dash = win.live.dashboard
        n = dash.samples_total
        qtbot.waitUntil(lambda: dash.samples_total > n + 5, timeout=10000)
        qtbot.waitUntil(lambda: not win.demo.running, timeout=15000)  # the demo is stopped
        assert win.devices.entry(demo_port) is None
    finally:
        back.stop()
