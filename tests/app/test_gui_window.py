"""The main window: opens, lists devices as they come and go, shows errors, remembers."""

from __future__ import annotations

from PySide6.QtCore import Qt

from app.gui.devices import DeviceEntry
from app.gui.main_window import PAGES
from device_drivers.errors import InputError

BOARD = DeviceEntry(port="/dev/ttyFAKE0", name="Arduino Nano 33 BLE Sense",
                    board_id="nano33ble", mode="app", serial="ABC123", backend="smp")
BOOT = DeviceEntry(port="/dev/ttyFAKE1", name="Raspberry Pi Pico", board_id="pico",
                   mode="bootloader", serial="E66", backend="uf2")


def test_window_opens_with_its_pages(make_window, fake_enumerator) -> None:
    win = make_window(enumerate_fn=fake_enumerator)
    assert win.isVisible()
    titles = [win.tabs.tabText(i) for i in range(win.tabs.count())]
    assert titles == ["Model", "Flash", "Live", "Console", "Records", "Fleet"]
    assert win.current_page() == "live"  # first start shows the live view
    assert win.windowTitle() == "TinyOps"


def test_devices_appear_and_disappear_with_the_watcher(qtbot, make_window,
                                                        fake_enumerator) -> None:
    fake_enumerator.plug(BOARD)
    win = make_window(enumerate_fn=fake_enumerator)
    qtbot.waitUntil(lambda: [d.port for d in win.devices.devices()] == [BOARD.port], timeout=3000)
    fake_enumerator.plug(BOOT)
    qtbot.waitUntil(lambda: len(win.devices.devices()) == 2, timeout=3000)
    shown = win.devices.entry(BOOT.port)
    assert shown is not None and shown.mode == "bootloader" and shown.serial == "E66"
    fake_enumerator.unplug(BOARD.port)
    qtbot.waitUntil(lambda: [d.port for d in win.devices.devices()] == [BOOT.port], timeout=3000)
    fake_enumerator.unplug(BOOT.port)
    qtbot.waitUntil(lambda: win.devices.devices() == [], timeout=3000)
    assert win.devices.stack.currentWidget() is win.devices.empty  # "No boards found"


def test_a_virtual_board_appears_and_disappears(qtbot, make_window, tmp_path) -> None:
    """The real enumerator (core scan) finds a running virtual board, and notices it stop."""
    from device_drivers.virtual.board import VirtualBoard

    win = make_window()  # default enumerator: device_drivers.boards.scan
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb")
    port = board.start()
    try:
        qtbot.waitUntil(lambda: win.devices.entry(port) is not None, timeout=5000)
        entry = win.devices.entry(port)
        assert entry.virtual and entry.board_id == "nano33ble"
    finally:
        board.stop()
    qtbot.waitUntil(lambda: win.devices.entry(port) is None, timeout=5000)


def test_a_failing_job_shows_its_message_and_fix(qtbot, make_window) -> None:
    win = make_window(watch=False)

    def bad_job(progress=None, cancel=None):
        progress(0.5, "half way")
        raise InputError("the calibration file has 0 samples", "record at least 100 samples")

    job = win.runner.submit(bad_job, name="bad")
    job.failed.connect(win.report_error)
    with qtbot.waitSignal(job.finished, timeout=3000):
        pass
    assert win.message.isVisible()
    assert win.message.level == "error"
    text = win.message.label.text()
    assert "the calibration file has 0 samples" in text
    assert "record at least 100 samples" in text
    assert win.message.message == "the calibration file has 0 samples"


def test_a_bug_in_a_job_is_a_message_not_a_crash(qtbot, make_window) -> None:
    win = make_window(watch=False)
    job = win.runner.submit(lambda: {}["missing"], name="buggy", pass_context=False)
    job.failed.connect(win.report_error)
    with qtbot.waitSignal(job.finished, timeout=3000):
        pass
    assert win.message.level == "error"
    assert "KeyError" in win.message.message
    assert "bug" in win.message.label.text()  # says it is ours, and where the details are


def test_connecting_to_a_missing_port_explains_it(qtbot, make_window) -> None:
    win = make_window(watch=False)
    win.connect_port("/dev/ttyDOES_NOT_EXIST")
    qtbot.waitUntil(lambda: win.link.state == "failed", timeout=5000)
    assert win.message.level == "error"
    assert "does not exist" in win.message.message
    assert "tinyops boards" in win.message.label.text()  # the fix
    assert win.status.link_state == "failed"


def test_shortcuts_switch_pages(qtbot, make_window) -> None:
    win = make_window(watch=False)
    with qtbot.waitActive(win):
        win.activateWindow()
    keys = (Qt.Key.Key_1, Qt.Key.Key_2, Qt.Key.Key_3, Qt.Key.Key_4, Qt.Key.Key_5, Qt.Key.Key_6)
    for key, page in zip(keys, PAGES, strict=True):
        qtbot.keyClick(win, key, Qt.KeyboardModifier.ControlModifier)
        assert win.current_page() == page


def test_settings_remember_page_geometry_and_live_window(qtbot, make_window,
                                                         gui_settings) -> None:
    win = make_window(watch=False)
    win.resize(300, 700)  # the offscreen screen is 800 px wide: the width is clamped
    size = (win.width(), win.height())
    win.show_page("records")
    win.live.set_window(120)
    win.shutdown()
    assert gui_settings.get("window/page") == "records"
    assert gui_settings.get("live/window_s") == 120
    win2 = make_window(watch=False)
    assert win2.current_page() == "records"
    assert (win2.width(), win2.height()) == size
    assert size[1] == 700
    assert win2.live.dashboard.window_s == 120
    assert gui_settings.path.is_file()


def test_kiosk_locks_controls_to_the_live_view(qtbot, make_window) -> None:
    win = make_window(watch=False, kiosk=True, show=False)
    win.show()
    assert win.menuBar().isHidden()
    assert win.devices.isHidden()
    assert win.live.controls.isHidden()
    win.show_page("model")
    assert win.current_page() == "live"
    assert win.link.auto_reconnect is False  # set when it connects


def test_kiosk_follows_an_unplug_and_a_new_board(qtbot, make_window, tmp_path) -> None:
    """Kiosk: connects to the board that is there, and to the next one after an unplug."""
    from device_drivers.virtual.board import VirtualBoard

    first = VirtualBoard(board="nano33ble", state_dir=tmp_path / "a")
    first.start()
    second = None
    try:
        win = make_window(kiosk=True)
        qtbot.waitUntil(lambda: win.link.state == "connected" and win.link.port == first.port,
                        timeout=15000)
        assert win.link.auto_reconnect
        first.stop()  # unplug
        qtbot.waitUntil(lambda: win.link.state in ("lost", "connecting", "failed"),
                        timeout=10000)
        assert win.status.link_state == win.link.state != "connected"  # the status bar says so
        second = VirtualBoard(board="nano33ble", state_dir=tmp_path / "b")
        second.start()  # plug another one in
        qtbot.waitUntil(lambda: win.link.state == "connected" and win.link.port == second.port,
                        timeout=15000)
        dash = win.live.dashboard
        before = dash.samples_total
        qtbot.waitUntil(lambda: dash.samples_total > before + 10, timeout=10000)
    finally:
        first.stop()
        if second is not None:
            second.stop()


def test_no_board_means_the_demo_board_and_says_so(qtbot, make_window, fake_enumerator) -> None:
    win = make_window(enumerate_fn=fake_enumerator, auto_demo=True, demo_flash=False)
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=20000)
    assert "No board connected" in win.message.message  # it says so on screen
    assert win.demo.running and win.link.port == win.demo.port
    entry = win.devices.entry(win.demo.port)
    assert entry is not None and entry.virtual
    assert win.current_page() == "live"
    qtbot.waitUntil(lambda: win.live.store.total_samples > 0, timeout=10000)
