"""Flash targets are exactly the connected, chosen boards (issue 11, item 4)."""

from __future__ import annotations

from app.gui.devices import DeviceEntry
from fleet_ops.records import open_store

A = DeviceEntry(port="/dev/ttyACM0", name="Board A", board_id="nano33ble", mode="app",
                serial="AAA")
B = DeviceEntry(port="/dev/ttyACM1", name="Board B", board_id="nano33ble", mode="app",
                serial="BBB")
C = DeviceEntry(port="/dev/ttyACM2", name="Board C", board_id="nano33ble", mode="app")


def _ports(entries) -> list[str]:
    return [e.port for e in entries]


def test_vanished_boards_are_unticked_and_a_new_board_is_chosen(qtbot, make_window,
                                                                 fake_enumerator) -> None:
    fake_enumerator.plug(A)
    win = make_window(enumerate_fn=fake_enumerator)
    targets = win.flash_page.targets
    qtbot.waitUntil(lambda: _ports(targets.chosen()) == [A.port], timeout=5000)

    fake_enumerator.unplug(A.port)
    qtbot.waitUntil(lambda: _ports(targets.gone()) == [A.port], timeout=5000)
    assert targets.chosen() == []  # a vanished board is never a target
    gone = next(targets.item(i) for i in range(targets.count())
                if "gone" in targets.item(i).text())
    assert A.port in gone.text() and not gone.flags()  # greyed out, cannot be ticked

    fake_enumerator.plug(B)  # the new board is not left out while A is gone
    qtbot.waitUntil(lambda: _ports(targets.chosen()) == [B.port], timeout=5000)
    assert _ports(win.flash_page.selected_targets()) == [B.port]
    assert "1 of 1 connected board(s) chosen" in win.flash_page.targets_note.text()


def test_a_second_board_is_added_unticked_and_named(qtbot, make_window,
                                                    fake_enumerator) -> None:
    fake_enumerator.plug(A)
    win = make_window(enumerate_fn=fake_enumerator)
    targets = win.flash_page.targets
    qtbot.waitUntil(lambda: _ports(targets.chosen()) == [A.port], timeout=5000)
    fake_enumerator.plug(C)
    qtbot.waitUntil(lambda: C.port in _ports(targets.connected()), timeout=5000)
    assert _ports(targets.chosen()) == [A.port]  # the user's choice stands...
    assert f"new, not ticked: {C.port}" in win.flash_page.targets_note.text()  # ...said aloud


def test_flash_all_connected_ticks_every_connected_board(qtbot, make_window, fake_enumerator,
                                                         monkeypatch) -> None:
    for e in (A, B):
        fake_enumerator.plug(e)
    win = make_window(enumerate_fn=fake_enumerator)
    page = win.flash_page
    qtbot.waitUntil(lambda: len(page.targets.connected()) == 2, timeout=5000)
    fake_enumerator.unplug(B.port)
    qtbot.waitUntil(lambda: _ports(page.targets.gone()) == [B.port], timeout=5000)
    fake_enumerator.plug(C)
    qtbot.waitUntil(lambda: C.port in _ports(page.targets.connected()), timeout=5000)
    flashed: list[str] = []
    monkeypatch.setattr(page, "flash_to", lambda entry: flashed.append(entry.port))
    page.flash_all()
    assert sorted(flashed) == sorted([A.port, C.port])  # B is gone: not flashed


def test_the_demo_board_writes_no_records(qtbot, make_window) -> None:
    win = make_window(demo=True, watch=False, demo_flash=True)  # the demo flashes the example
    qtbot.waitUntil(lambda: bool(win.flash_page.results), timeout=30000)
    result = next(iter(win.flash_page.results.values()))
    assert result["ok"] and result["verified"]
    qtbot.waitUntil(lambda: not win.flash_page.jobs, timeout=10000)
    assert open_store().list() == []


def test_gui_flash_exports_a_model_for_a_uf2_board(monkeypatch) -> None:
    """The GUI's flash job hands a UF2 board a UF2 image of the model, as the CLI does."""
    import device_drivers.flashing as flashing
    from app.gui.pages.flash_jobs import flash_job
    from device_drivers import paths

    model = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"
    seen: dict[str, object] = {}

    class Result:
        def to_dict(self) -> dict[str, object]:
            return {"ok": True}

    def fake_flash(job, port, *, backend=None, recorder=None, **_kw):
        artifact = job.artifact  # one pass: the job was prepared once, board and back end
        seen.update(kind=artifact.kind, backend=backend or job.backend, head=artifact.data[:4],
                    model=artifact.expected_model_sha256, recorder=recorder)
        return Result()

    monkeypatch.setattr(flashing, "flash", fake_flash)
    assert flash_job(str(model), "/media/RPI-RP2", board="pico", record=False) == {"ok": True}
    assert seen["kind"] == "uf2" and seen["backend"] == "uf2" and seen["head"] == b"UF2\n"
    import hashlib

    assert seen["model"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert seen["recorder"] is None
