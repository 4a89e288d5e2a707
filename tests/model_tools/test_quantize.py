"""Quantization: the report's figures checked against an evaluation done here, independently."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest

from model_tools.errors import Cancelled, ModelInputError
from model_tools.quantize import quantize
from model_tools.tflm import tflm_available

LABELS = ["normal", "imbalance", "bearing_fault"]


@pytest.fixture(scope="module")
def independent(quantized, example_dir: Path, tf):
    """Float Keras outputs and TFLM int8 outputs, computed without model_tools."""
    import keras
    from tflite_micro.python.tflite_micro import runtime

    _, out, _ = quantized
    ev = np.load(example_dir / "eval.npz")
    x, y = ev["x"], ev["y"]
    float_out = keras.models.load_model(example_dir / "model.keras")(x).numpy()
    interp = runtime.Interpreter.from_bytes(out.read_bytes(), arena_size=256 * 1024)
    iq = interp.get_input_details(0)["quantization_parameters"]
    oq = interp.get_output_details(0)["quantization_parameters"]
    s, z = float(iq["scales"][0]), int(iq["zero_points"][0])
    q_out = []
    for sample in x:
        interp.set_input(np.clip(np.round(sample / s) + z, -128, 127).astype(np.int8)[None], 0)
        interp.invoke()
        raw = interp.get_output(0)[0].astype(np.float64)
        q_out.append((raw - int(oq["zero_points"][0])) * float(oq["scales"][0]))
    return float_out, np.array(q_out), y


@pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")
def test_report_matches_independent_evaluation(quantized, independent) -> None:
    report, _, _ = quantized
    float_out, q_out, y = independent
    fp, qp = float_out.argmax(1), q_out.argmax(1)
    assert report.engine == "tflite-micro" and report.eval_samples == len(y)
    assert report.float_accuracy == pytest.approx(np.mean(fp == y))
    assert report.quantized_accuracy == pytest.approx(np.mean(qp == y))
    assert report.agreement == pytest.approx(np.mean(fp == qp))
    assert report.output_rmse == pytest.approx(np.sqrt(np.mean((float_out - q_out) ** 2)),
                                               rel=1e-4)
    for c, name in enumerate(LABELS):
        pc = report.per_class[name]
        assert pc["count"] == int(np.sum(y == c))
        assert pc["quantized"] == pytest.approx(np.mean(qp[y == c] == c))
    assert report.quantized_accuracy > 0.95  # the example is meant to classify well


def test_report_keys_and_sizes(quantized) -> None:
    report, out, _ = quantized
    d = report.to_dict()
    for key in ("float_size", "quantized_size", "float_accuracy", "quantized_accuracy",
                "agreement", "per_class", "output_rmse", "arena_bytes", "ops",
                "tflm_compatible", "sha256", "mode"):
        assert key in d
    assert report.mode == "int8" and report.quantized_size == out.stat().st_size
    assert report.quantized_size < report.float_size
    assert report.input["dtype"] == "int8" and report.output_tensor["dtype"] == "int8"
    assert report.sha256 == hashlib.sha256(out.read_bytes()).hexdigest()
    assert json.loads(json.dumps(d)) == d


def test_bundled_example_is_reproducible(quantized, example_dir: Path) -> None:
    """Quantizing the shipped model.keras gives the shipped int8 model, byte for byte."""
    report, _, _ = quantized
    assert report.sha256 == hashlib.sha256(
        (example_dir / "model_int8.tflite").read_bytes()).hexdigest()


def test_model_card_traces_the_model(quantized, example_dir: Path) -> None:
    report, out, _ = quantized
    card = json.loads(Path(report.card).read_text())
    assert Path(report.card) == out.with_name(out.name + ".card.json")
    assert card["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert card["source"]["sha256"] == hashlib.sha256(
        (example_dir / "model.keras").read_bytes()).hexdigest()
    assert card["calibration"]["sha256"] == hashlib.sha256(
        (example_dir / "calib.npz").read_bytes()).hexdigest()
    assert card["calibration"]["samples"] == len(np.load(example_dir / "calib.npz")["x"])
    assert card["labels"] == LABELS and card["mode"] == "int8"
    assert card["input"]["scale"] == report.input["scale"]
    assert card["report"]["quantized_accuracy"] == report.quantized_accuracy


def test_progress_is_monotonic_and_completes(quantized) -> None:
    _, _, events = quantized
    fractions = [f for f, _ in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("calibrating" in m for _, m in events)


def test_cancel_during_calibration(example_dir: Path, tmp_path: Path, tf) -> None:
    cancel = threading.Event()

    def progress(f: float, msg: str) -> None:
        if "calibrating" in msg:
            cancel.set()

    out = tmp_path / "c.tflite"
    with pytest.raises(Cancelled):
        quantize(example_dir / "model.keras", example_dir / "calib.npz", output=out,
                 progress=progress, cancel=cancel)
    assert not out.exists()


def test_without_labels_reports_agreement_only(tiny_keras, tmp_path: Path) -> None:
    _, folder = tiny_keras
    report = quantize(folder / "tiny.keras", folder / "calib.npz", eval_data=folder / "calib.npz",
                      output=tmp_path / "t.tflite", measure_arena=False)
    assert report.float_accuracy is None and report.quantized_accuracy is None
    assert report.per_class is None and report.agreement is not None
    assert report.output_rmse < 0.05


@pytest.mark.parametrize("mode", ["int8-fallback", "dynamic", "float16"])
def test_other_modes(tiny_keras, tmp_path: Path, mode: str) -> None:
    _, folder = tiny_keras
    report = quantize(folder / "tiny.keras", folder / "calib.npz", mode=mode,
                      output=tmp_path / f"{mode}.tflite", measure_arena=False)
    assert report.mode == mode and (tmp_path / f"{mode}.tflite").is_file()
    assert report.output_rmse < 0.05
    assert report.engine in ("tflite-micro", "litert")
    if report.engine == "litert":  # TFLM could not run it: the report says why
        assert report.tflm_error


def test_savedmodel_source(tiny_keras, tmp_path: Path) -> None:
    _, folder = tiny_keras
    report = quantize(folder / "tiny_saved", folder / "calib.npz", output=tmp_path / "s.tflite",
                      measure_arena=False)
    assert report.input["dtype"] == "int8" and report.output_rmse < 0.05


def test_tflite_source_is_refused(example_dir: Path) -> None:
    with pytest.raises(ModelInputError, match="float model"):
        quantize(example_dir / "model_int8.tflite", example_dir / "calib.npz")
