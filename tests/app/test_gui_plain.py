"""Plain-language errors in the window (issue 11, item 8)."""

from __future__ import annotations

import pytest

from app.gui.plain import plain
from app.gui.workers import JobError


@pytest.mark.parametrize(("raw", "want"), [
    ("could not open port /dev/ttyACM0: [Errno 2] No such file or directory: '/dev/ttyACM0'",
     "could not open port /dev/ttyACM0: not found"),
    ("read failed: [Errno 5] Input/output error",
     "read failed: the connection failed (the board was unplugged or reset)"),
    ("SerialException('device reports readiness to read but returned no data')",
     "device reports readiness to read but returned no data"),
    ("serial.serialutil.SerialException: write failed: [Errno 16] Device or resource busy",
     "write failed: busy: another program is using it"),
    ("session <device_drivers.link.session.DeviceSession object at 0x7f3a2c> closed",
     "session DeviceSession closed"),
    ("the device did not verify model.tflite", "the device did not verify model.tflite"),
])
def test_plain_rewrites_errno_and_reprs(raw: str, want: str) -> None:
    assert plain(raw) == want


def test_the_window_shows_errors_in_plain_language(qtbot, make_window) -> None:
    win = make_window(watch=False)
    win.report_error(JobError("/dev/ttyACM0 went away: [Errno 5] Input/output error",
                              "plug it back in"))
    assert win.message.level == "error"
    shown = win.message.message
    assert "Errno" not in shown and "the board was unplugged or reset" in shown
    assert "Errno" not in win.status.currentMessage()
    win.status.set_link("lost", "lost /dev/ttyACM0: [Errno 19] No such device")
    assert "Errno" not in win.status.link_label.text()
