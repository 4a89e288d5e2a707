"""The window's link to a board while jobs use it: the GUI thread never blocks on the port,
a flash is never cut by a disconnect, back ends that open the port themselves get it."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from smpclient.requests import image_management as imgreq

from app.gui.devices import DeviceEntry
from device_drivers import paths
from device_drivers.flashing.smp import image_hash
from device_drivers.link.session import DeviceSession
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.faults import FaultConfig

MODEL = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"


class Heartbeat:
    """A QTimer on the GUI thread; the longest gap between its ticks is how long the GUI
    thread was blocked."""

    def __init__(self, interval_ms: int = 20) -> None:
        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.timeout.connect(lambda: self.ticks.append(time.monotonic()))
        self.timer.start(interval_ms)

    def stop(self) -> float:
        self.timer.stop()
        self.ticks.append(time.monotonic())
        return max(b - a for a, b in zip(self.ticks, self.ticks[1:], strict=False))


@pytest.fixture
def paced_board(tmp_path: Path) -> Iterator[VirtualBoard]:
    """A virtual board behind a 115200-baud link (a real UART's pace)."""
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "paced",
                         faults=FaultConfig(baud=115200))
    board.start()
    try:
        yield board
    finally:
        board.stop()


def _entry(board: VirtualBoard) -> DeviceEntry:
    return DeviceEntry(port=board.port, name="Virtual Nano", board_id="nano33ble", mode="app",
                       virtual=True, backend="virtual")


def _connect(qtbot, win, board: VirtualBoard) -> None:
    win.devices.add_device(_entry(board))
    win.connect_port(board.port)
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=10000)


def _big_model(tmp_path: Path, size: int = 100_000) -> Path:
    """The bundled model padded to ``size`` bytes (a FlatBuffer ignores trailing bytes)."""
    data = MODEL.read_bytes()
    path = tmp_path / "big.tflite"
    path.write_bytes(data + b"\x00" * (size - len(data)))
    return path


def _started(qtbot, job, fraction: float = 0.2) -> None:
    qtbot.waitUntil(lambda: job.last_progress[0] >= fraction or not job.running,
                    timeout=20000)
    assert job.running, job.error


def test_disconnect_during_a_flash_is_refused_without_blocking(qtbot, make_window,
                                                               paced_board, tmp_path) -> None:
    win = make_window(watch=False)
    _connect(qtbot, win, paced_board)
    model = _big_model(tmp_path)
    want = hashlib.sha256(model.read_bytes()).hexdigest()
    win.flash_page.set_artifact(str(model))
    job = win.flash_page.flash_to(_entry(paced_board))
    _started(qtbot, job)
    beat = Heartbeat()
    t0 = time.monotonic()
    win.devices.disconnect_requested.emit()  # the Disconnect button
    took = time.monotonic() - t0
    qtbot.wait(300)  # the GUI keeps ticking after the click too
    assert job.running, "the flash must not be cut short by the disconnect"
    assert win.message.level == "error" and "busy" in win.message.message
    assert win.link.state == "connected"
    with qtbot.waitSignal(job.finished, timeout=60000):
        pass
    blocked = beat.stop()
    assert took < 0.5 and blocked < 0.5, (took, blocked)
    result = win.flash_page.results[paced_board.port]
    assert result["ok"] and result["verified"] and result["device_digest"] == want
    assert paced_board.loaded_model_sha256 == want
    # once the flash is done, the disconnect goes through
    win.disconnect()
    assert win.link.state == "idle"


def test_kiosk_defers_the_switch_until_the_job_ends(qtbot, make_window,
                                                    virtual_board) -> None:
    win = make_window(watch=False, kiosk=True, show=False)
    _connect(qtbot, win, virtual_board)
    session = win.link.session
    release = threading.Event()

    def hold(progress=None, cancel=None) -> str:  # a job talking to the board, then waiting
        answer = session.echo("held")
        release.wait(10)
        return answer

    job = win.runner.submit(hold, name="hold")
    win.link.lend(job)
    win.disconnect()
    assert win.link.state == "connected"  # deferred, not refused: kiosk shows no dialogs
    release.set()
    with qtbot.waitSignal(job.finished, timeout=5000):
        pass
    assert job.result == "held"
    assert win.link.state == "idle" and win.link.port is None


def test_closing_the_window_mid_flash_is_quick(qtbot, make_window, paced_board,
                                              tmp_path) -> None:
    win = make_window(watch=False)
    _connect(qtbot, win, paced_board)
    win.flash_page.set_artifact(str(_big_model(tmp_path)))
    job = win.flash_page.flash_to(_entry(paced_board))
    _started(qtbot, job)
    t0 = time.monotonic()
    win.shutdown()
    took = time.monotonic() - t0
    # ~1 s here (cancel, then the link); a bound with room for a slower CI machine
    assert took < 4.0, f"closing took {took:.1f} s"
    qtbot.waitUntil(lambda: not job.running, timeout=3000)
    assert job.error is not None and job.error.cancelled, job.error  # cancelled, not cut off


def test_an_mcuboot_image_flashes_to_the_connected_board(qtbot, make_window, virtual_board,
                                                         tmp_path, mcuboot_images) -> None:
    """The smp back end opens the port itself (reset into MCUboot, wait for the boot): the
    live view lets go of the port for the flash and comes back afterwards."""
    win = make_window(watch=False)
    _connect(qtbot, win, virtual_board)
    image = mcuboot_images.build(bytes(range(256)) * 40)
    path = tmp_path / "app.signed.bin"
    path.write_bytes(image)
    want = image_hash(image).hex()
    page = win.flash_page
    page.set_artifact(str(path))
    jobs = page.flash_selected()  # the connected board is ticked
    assert len(jobs) == 1
    states = []
    win.link.state_changed.connect(lambda s, _d: states.append(s))
    with qtbot.waitSignal(jobs[0].finished, timeout=60000):
        pass
    result = page.results.get(virtual_board.port)
    assert result is not None, win.message.message
    assert result["ok"] and result["verified"] and result["device_digest"] == want, result
    assert "port busy" not in str(result) and "busy" not in win.message.message
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=10000)
    assert "connecting" in states  # it reconnected after the flash
    win.disconnect()
    qtbot.waitUntil(lambda: not win.link.closing, timeout=5000)  # the reader let go of it
    with DeviceSession.open(virtual_board.port) as dev:
        slot0 = dev.request(imgreq.ImageStatesRead()).images[0]
    assert slot0.hash.hex() == want and slot0.confirmed


def test_console_send_reaches_the_board(qtbot, make_window, virtual_board) -> None:
    win = make_window(watch=False)
    _connect(qtbot, win, virtual_board)
    before = virtual_board.counters.text_lines_rx
    win.show_page("console")
    win.console.input.setText("led on")
    qtbot.mouseClick(win.console.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: virtual_board.counters.text_lines_rx > before, timeout=5000)
    assert win.console.input.text() == ""
    assert win.message.level != "error"
