"""The Model page analyzes and quantizes the bundled example (TensorFlow runs in a worker)."""

from __future__ import annotations

import numpy as np
import pytest

from app.gui.widgets import human_bytes
from device_drivers import paths
from model_tools.tflm import tflm_available

EXAMPLE = paths.resources_dir() / "examples" / "vibration"


def _run(qtbot, job, timeout: int):
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=timeout):
        pass
    return job


def test_analyze_the_example_tflite_against_a_board(qtbot, make_window) -> None:
    win = make_window(watch=False)
    page = win.model_page
    win.show_page("model")
    _run(qtbot, page.load_boards(), 10000)
    idx = page.board.findData("nano33ble")
    assert idx > 0
    page.board.setCurrentIndex(idx)
    page.path.setText(str(EXAMPLE / "model_int8.tflite"))
    job = _run(qtbot, page.analyze(), 60000)
    assert job.error is None, job.error and job.error.text()
    a = page.analysis
    assert a is not None and a["flash_bytes"] == (EXAMPLE / "model_int8.tflite").stat().st_size
    assert a["fit"]["verdict"] in ("fits", "tight", "does not fit")
    assert page.fit.verdict.text().lower() == a["fit"]["verdict"]
    assert page.fit.flash.total == a["fit"]["flash"]["total"] > 0
    assert page.ops.rowCount() == len(a["ops"]) > 0
    assert page.summary.value("Labels") == "normal, imbalance, bearing_fault"
    if not tflm_available():
        pytest.skip("tflite-micro not installed: the arena is only estimated")
    # tflite-micro is here: the arena must be the measured one, and shown as such
    assert a["arena_method"] == "measured" and a["tflm_compatible"] is True
    assert a["arena_bytes"] % 16 == 0 and a["arena_bytes"] != a["arena_estimate"]
    assert page.summary.value("Tensor arena") == (
        f"{human_bytes(a['arena_bytes'])} (TFLM minimum, measured, no margin)")
    assert page.summary.value("Runs in TFLM") == "yes"


def test_analyze_errors_are_messages(qtbot, make_window, tmp_path) -> None:
    win = make_window(watch=False)
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 10)
    win.model_page.path.setText(str(bad))
    job = _run(qtbot, win.model_page.analyze(), 30000)
    assert job.error is not None and job.error.expected  # a clear refusal, not a crash
    assert win.message.level == "error"
    assert win.message.message == job.error.message


@pytest.mark.slow
def test_quantize_the_example_through_the_page(qtbot, make_window, tmp_path) -> None:
    win = make_window(watch=False)
    page = win.model_page
    src = tmp_path / "model.keras"
    src.write_bytes((EXAMPLE / "model.keras").read_bytes())
    (tmp_path / "labels.txt").write_text((EXAMPLE / "labels.txt").read_text())
    page.path.setText(str(src))
    page.calib.setText(str(EXAMPLE / "calib.npz"))
    page.eval.setText(str(EXAMPLE / "eval.npz"))
    progress = []
    job = page.quantize()
    job.progress.connect(lambda f, m: progress.append(f))
    _run(qtbot, job, 240000)
    assert job.error is None, job.error and job.error.text()
    r = page.report
    out = tmp_path / "model_int8.tflite"
    assert r["output"] == str(out) and out.is_file()
    assert progress and progress == sorted(progress)
    # check the reported int8 accuracy independently: run the written model ourselves
    from model_tools.evaluate import run_as_device
    from model_tools.verify import verify_tflite

    data = np.load(EXAMPLE / "eval.npz")
    run = run_as_device(verify_tflite(out.read_bytes()), data["x"].astype(np.float32))
    acc = float(np.mean(run.outputs.argmax(axis=1) == data["y"]))
    assert r["quantized_accuracy"] == pytest.approx(acc, abs=1e-9)
    assert page.report_table.item(1, 2).text() == f"{100 * acc:.1f} %"
    assert page.class_table.rowCount() == 3
    # the page analyzes the written model next (busy meanwhile), then offers it for flashing
    qtbot.waitUntil(page.flash_button.isEnabled, timeout=120000)
    page.flash_button.click()  # offers it to the Flash page
    assert win.current_page() == "flash" and win.flash_page.artifact.text() == str(out)


def test_export_c_source_and_uf2_from_the_page(qtbot, make_window, tmp_path) -> None:
    win = make_window(watch=False)
    page = win.model_page
    _run(qtbot, page.load_boards(), 10000)
    src = str(EXAMPLE / "model_int8.tflite")
    data = (EXAMPLE / "model_int8.tflite").read_bytes()
    job = _run(qtbot, page.export(src, "c", str(tmp_path / "c")), 30000)
    assert job.error is None, job.error and job.error.text()
    sources = list((tmp_path / "c").glob("*.cc"))
    assert len(sources) == 1
    text = sources[0].read_text()
    assert f"0x{data[0]:02x}" in text.lower() and str(len(data)) in text
    # UF2 without a UF2 board: refused with the fix
    page.board.setCurrentIndex(page.board.findData("nano33ble"))
    from device_drivers.boards.registry import get_board

    uf2_boards = [page.board.itemData(i) for i in range(1, page.board.count())
                  if get_board(page.board.itemData(i)).model_region is not None]
    assert get_board("nano33ble").model_region is None  # not a UF2 board: refused
    job = _run(qtbot, page.export(src, "uf2", str(tmp_path / "m.uf2")), 30000)
    assert job.error is not None and "UF2 board" in job.error.message
    assert not (tmp_path / "m.uf2").exists()
    assert uf2_boards, "the registry has UF2 boards"
    page.board.setCurrentIndex(page.board.findData(uf2_boards[0]))
    job = _run(qtbot, page.export(src, "uf2", str(tmp_path / "m.uf2")), 30000)
    assert job.error is None, job.error and job.error.text()
    blob = (tmp_path / "m.uf2").read_bytes()
    assert len(blob) % 512 == 0 and blob[:4] == b"UF2\n"
