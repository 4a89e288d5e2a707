"""Device → "Start emulated Cortex-M4 (QEMU)": our firmware (TFLM + CMSIS-NN, Arm code) is
built (cached), booted in QEMU, given the example, listed and plotted like any board."""

from __future__ import annotations

import shutil

import pytest
from ci_guard import unavailable

pytestmark = [pytest.mark.firmware, pytest.mark.timeout(1800)]  # a cold build takes minutes


def test_the_emulated_board_is_listed_connected_and_plotted(qtbot, make_window) -> None:
    for tool in ("arm-none-eabi-gcc", "qemu-system-arm"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (Debian: gcc-arm-none-eabi, qemu-system-arm)")
    from app.gui.emulated import NAME

    win = make_window()
    win.start_demo(banner="No board connected: showing the demo board.")
    qtbot.waitUntil(lambda: win.demo.running and win.link.state == "connected", timeout=30_000)
    assert "showing the demo board" in win.message.message
    win.start_emulated()
    # running is set on the worker; the list gets the board when the job's success reaches
    # the GUI thread, a moment later
    qtbot.waitUntil(lambda: win.emulated.running and win.devices.entry(win.emulated.port)
                    is not None, timeout=1_700_000)
    port = win.emulated.port
    assert port is not None and port.startswith("socket://127.0.0.1:")
    entry = win.devices.entry(port)
    assert entry is not None and entry.name == NAME
    qtbot.waitUntil(lambda: win.link.state == "connected" and win.link.port == port,
                    timeout=30_000)
    assert win.message.message == ""  # the demo board's banner no longer holds
    # the firmware streams the example's scores, computed in QEMU, into the Live page
    qtbot.waitUntil(lambda: {"score/normal", "score/imbalance", "score/bearing_fault"}
                    <= set(win.live.dashboard.channels()), timeout=30_000)
    x, _y = win.live.dashboard.channel_data("score/normal")
    assert len(x) > 0
    # a new board, a new view: the demo board's channels (temperature, supply: the emulated
    # board has no such sensors) are not shown as this board's
    assert "temp_c" not in win.live.dashboard.channels()
    win.shutdown()
    assert not win.emulated.running
