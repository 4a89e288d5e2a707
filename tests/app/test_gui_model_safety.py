"""The Model page never surprises (issue 11, item 5): quantize writes a new file the user
chose, never over an existing one without asking, never into the package; failed analyses
clear old results; TensorFlow runs in the model worker process, not in the GUI."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from app.gui.pages import model_jobs
from device_drivers import paths
from device_drivers.errors import InputError
from fleet_ops.records import open_store

EXAMPLE = paths.resources_dir() / "examples" / "vibration"


def _run(qtbot, job, timeout: int):
    assert job is not None
    with qtbot.waitSignal(job.finished, timeout=timeout):
        pass
    return job


def _digest(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_quantize_asks_before_replacing_and_refuses_when_told_no(qtbot, make_window, tmp_path,
                                                                monkeypatch) -> None:
    win = make_window(watch=False)
    page = win.model_page
    src = tmp_path / "model.keras"
    src.write_bytes((EXAMPLE / "model.keras").read_bytes())
    page.set_model(str(src))
    assert page.output.text() == str(tmp_path / "model_int8.tflite")  # beside, with a suffix
    page.mode.setCurrentText("float16")
    assert page.output.text() == str(tmp_path / "model_float16.tflite")
    existing = tmp_path / "model_float16.tflite"
    existing.write_bytes(b"keep me")
    asked: list[str] = []

    def no(parent, title, text, *args):
        asked.append(text)
        return QMessageBox.StandardButton.No

    monkeypatch.setattr(QMessageBox, "question", no)
    assert page.quantize() is None  # nothing submitted
    assert asked and str(existing) in asked[0]
    assert existing.read_bytes() == b"keep me"
    assert win.message.level == "info" and "not replaced" in win.message.message  # a choice
    assert not win.runner.active


def test_quantize_job_itself_refuses_an_existing_file_without_consent(tmp_path) -> None:
    src = tmp_path / "model.keras"
    src.write_bytes(b"x")
    out = tmp_path / "out.tflite"
    out.write_bytes(b"old")
    with pytest.raises(InputError, match="exists already"):
        model_jobs.quantize_job(str(src), "calib.npz", None, "int8", output=str(out))
    with pytest.raises(InputError, match="replace the input"):
        model_jobs.check_output(str(src), str(src), overwrite=True)
    assert model_jobs.check_output(str(src), str(out), overwrite=True) == out
    assert out.read_bytes() == b"old"


def test_quantize_never_writes_into_the_package(qtbot, make_window, tinyops_home) -> None:
    win = make_window(watch=False)
    page = win.model_page
    shipped = EXAMPLE / "model_int8.tflite"
    before = _digest(shipped)
    page.set_model(str(EXAMPLE / "model.keras"))
    default = Path(page.output.text())
    assert not model_jobs.inside_package(default)  # the example's default is the user's dir
    assert default.is_relative_to(paths.data_dir()) and default.name == "model_int8.tflite"
    page.output.setText(str(shipped))
    assert page.quantize() is None
    assert "installed files" in win.message.message
    assert not win.runner.active and _digest(shipped) == before
    with pytest.raises(InputError, match="installed files"):
        model_jobs.quantize_job(str(EXAMPLE / "model.keras"), str(EXAMPLE / "calib.npz"),
                                None, "int8", output=str(shipped), overwrite=True)
    assert _digest(shipped) == before


def test_a_failed_analysis_clears_the_old_verdict(qtbot, make_window, tmp_path) -> None:
    win = make_window(watch=False)
    page = win.model_page
    _run(qtbot, page.load_boards(), 10000)
    page.board.setCurrentIndex(page.board.findData("nano33ble"))
    page.path.setText(str(EXAMPLE / "model_int8.tflite"))
    job = _run(qtbot, page.analyze(), 60000)
    assert job.error is None and page.fit.verdict.text().lower() == "fits"
    assert "model_int8.tflite" in page.fit.title()  # the gauge names the model it judges
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"\x1c\x00\x00\x00TFL3" + b"\x00" * 10)
    page.path.setText(str(bad))
    job = _run(qtbot, page.analyze(), 30000)
    assert job.error is not None
    assert page.analysis is None
    assert page.fit.verdict.text().startswith("analysis failed")
    with pytest.raises(KeyError):
        page.summary.value("Tensor arena")  # no figure from the previous model
    assert page.ops.rowCount() == 0


def test_export_is_recorded(qtbot, make_window, tmp_path) -> None:
    win = make_window(watch=False)
    page = win.model_page
    src = EXAMPLE / "model_int8.tflite"
    job = _run(qtbot, page.export(str(src), "c", str(tmp_path / "c")), 30000)
    assert job.error is None, job.error and job.error.text()
    recs = open_store().list(operation="export")
    assert len(recs) == 1 and recs[0].result == "ok"
    assert recs[0].details["source"] == str(src) and recs[0].details["format"] == "c"


@pytest.mark.slow
def test_tensorflow_loads_in_the_worker_process_not_the_gui(qtbot, make_window) -> None:
    tf_before = "tensorflow" in sys.modules
    win = make_window(watch=False)
    page = win.model_page
    page.path.setText(str(EXAMPLE / "model.keras"))
    messages: list[str] = []
    job = page.analyze()
    job.progress.connect(lambda f, m: messages.append(m))
    _run(qtbot, job, 120000)
    assert job.error is None, job.error and job.error.text()
    assert "loading TensorFlow (first time, ~10 s)" in messages
    pid = page.worker.pid
    assert pid is not None and pid != os.getpid()
    maps = Path(f"/proc/{pid}/maps")
    if maps.exists():
        assert "tensorflow" in maps.read_text()  # TensorFlow lives in the worker...
    assert ("tensorflow" in sys.modules) == tf_before  # ...and never came into this process
    page.shutdown()
    assert page.worker.pid is None
