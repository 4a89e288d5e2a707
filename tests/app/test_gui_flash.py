"""The Flash page flashes a real virtual board and shows the device's own verification."""

from __future__ import annotations

import hashlib

from device_drivers import paths
from fleet_ops.records import open_store

EXAMPLE = paths.resources_dir() / "examples" / "vibration"
MODEL = EXAMPLE / "model_int8.tflite"


def _connected(qtbot, win, port: str) -> None:
    win.connect_port(port)
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=10000)


def test_flash_page_flashes_and_shows_the_device_digest(qtbot, make_window,
                                                        virtual_board) -> None:
    win = make_window(enumerate_fn=lambda: [], watch=False)
    port = virtual_board.port
    from app.gui.devices import DeviceEntry

    win.devices.add_device(DeviceEntry(port=port, name="Virtual Nano", board_id="nano33ble",
                                       mode="app", virtual=True, backend="virtual"))
    _connected(qtbot, win, port)
    page = win.flash_page
    win.show_page("flash")
    page.set_artifact(str(MODEL))
    qtbot.waitUntil(lambda: "TFLite model" in page.about.text(), timeout=5000)
    jobs = page.flash_selected()  # the connected board is ticked by default
    assert len(jobs) == 1
    with qtbot.waitSignal(jobs[0].finished, timeout=30000):
        pass
    result = page.results[port]
    want = hashlib.sha256(MODEL.read_bytes()).hexdigest()
    assert result["ok"] and result["verified"]
    assert result["device_digest"] == want  # the device's digest, not ours
    assert virtual_board.loaded_model_sha256 == want  # and the board really runs it
    assert "Verified" in page.verdict.text() and want[:16] in page.verdict.text()
    assert page.table.item(0, 5).text().startswith("sha256 match")
    records = open_store().list(operation="flash")
    assert records and records[0].result == "ok" and records[0].artifact_sha256 == want
    # the live view kept its connection through the flash (one session per port)
    assert win.link.state == "connected"
    qtbot.waitUntil(lambda: page.records.rowCount() >= 1, timeout=5000)


def test_flash_refusal_is_shown_with_the_fix(qtbot, make_window, virtual_board,
                                            tmp_path) -> None:
    win = make_window(watch=False)
    from app.gui.devices import DeviceEntry

    port = virtual_board.port
    entry = DeviceEntry(port=port, name="Virtual Nano", board_id="nano33ble", mode="app",
                        virtual=True, backend="virtual")
    win.devices.add_device(entry)
    bogus = tmp_path / "not_a_model.tflite"
    bogus.write_bytes(b"\x00" * 4 + b"TFL3" + b"\xff" * 600)  # looks like one, is not
    before = virtual_board.loaded_model_sha256
    win.flash_page.set_artifact(str(bogus))
    job = win.flash_page.flash_to(entry)
    with qtbot.waitSignal(job.finished, timeout=30000):
        pass
    result = win.flash_page.results.get(port)
    assert result is not None and not result["ok"]
    assert win.message.level == "error" and win.message.message
    assert virtual_board.loaded_model_sha256 == before  # the previous model still runs
    assert before and result["still_runs"] == before  # and the page says which one
    assert f"still runs its previous model (sha256 {before[:16]}" in win.flash_page.verdict.text()
    assert open_store().list(operation="flash")[0].result == "failed"


def test_validate_on_target_is_bit_exact(qtbot, make_window, virtual_board) -> None:
    win = make_window(watch=False)
    _connected(qtbot, win, virtual_board.port)
    page = win.flash_page
    page.set_artifact(str(MODEL))
    page.val_data.setText(str(EXAMPLE / "eval.npz"))
    job = page.validate_connected()
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=120000):
        pass
    assert page.validation is not None, win.message.message
    assert page.validation["bit_exact"] and page.validation["samples"] > 0
    assert "bit-exact" in page.val_result.text()
