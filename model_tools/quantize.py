"""Quantize a float model for TFLite Micro and report what it cost.

``quantize(model, calib, eval_data=..., mode="int8", output=...)`` converts with TensorFlow's
converter, runs the float model and the quantized one (as a device would: quantized input,
tflite-micro, dequantized output) on the evaluation data, measures the exact arena, writes
the ``.tflite`` and its model card, and returns a ``QuantizeReport``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from model_tools.analyze import analyze_tflite, arena_figure
from model_tools.baseline import drift_baseline
from model_tools.card import write_card
from model_tools.convert import MODES, convert, predict_float
from model_tools.data import Dataset, load_dataset
from model_tools.errors import Cancelled, ModelInputError
from model_tools.evaluate import compare, io_specs, run_as_device
from model_tools.loading import LoadedModel, load_model
from model_tools.verify import verify_tflite
from tinyops_base.progress import Progress, sub_progress

DEFAULT_MODE = "int8"


@dataclass
class QuantizeReport:
    mode: str
    float_size: int  # bytes of the unquantized (float32) TFLite model
    quantized_size: int
    float_accuracy: float | None
    quantized_accuracy: float | None
    agreement: float | None  # top-1 agreement float vs quantized
    per_class: dict[str, dict[str, Any]] | None
    output_rmse: float | None
    arena_bytes: int | None  # model_tools.analyze.ARENA_DEFINITION (TFLM's minimum, no margin)
    arena_method: str
    ops: list[dict[str, Any]]
    tflm_compatible: bool | None
    tflm_error: str | None
    sha256: str
    output: str | None
    card: str | None
    engine: str  # what ran the quantized model in the evaluation
    evaluated_on: str  # "eval" | "calib"
    eval_samples: int
    calib_samples: int
    input: dict[str, Any] = field(default_factory=dict)
    output_tensor: dict[str, Any] = field(default_factory=dict)
    source_sha256: str = ""
    seconds: float = 0.0
    labels: list[str] | None = None
    tflm_verdict: dict[str, Any] | None = None  # why TFLM cannot run it (tflm_verdict.explain)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Phases:
    """Maps phase-local progress (0..1) onto the overall job."""

    def __init__(self, progress: Progress | None, cancel: Any) -> None:
        self.progress, self.cancel = progress, cancel

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled()

    def sub(self, lo: float, hi: float) -> Progress | None:
        if self.progress is None:
            return None
        return sub_progress(self.progress, lo, hi)

    def at(self, f: float, msg: str) -> None:
        self.check()
        if self.progress:
            self.progress(f, msg)


def _io(t: Any) -> dict[str, Any]:  # t: a tflite-micro tensor detail (untyped)
    return {"name": t.name, "dtype": t.dtype.lower(), "shape": list(t.shape),
            "scale": t.scales[0] if t.scales else None,
            "zero_point": t.zero_points[0] if t.zero_points else None}


def quantize(model: str | Path | LoadedModel, calib: str | Path | Dataset, *,
             eval_data: str | Path | Dataset | None = None, mode: str = DEFAULT_MODE,
             output: str | Path | None = None, labels: Sequence[str] | None = None,
             measure_arena: bool = True, progress: Progress | None = None,
             cancel: Any = None, extra_card: dict[str, Any] | None = None) -> QuantizeReport:
    """Quantize ``model`` with calibration data ``calib``; see ``QuantizeReport``.

    Writes ``output`` (default: ``<model stem>_<mode>.tflite`` next to the model) and its model
    card. ``eval_data`` with labels gives accuracies; without labels, agreement and RMSE;
    without eval data those two are computed on the calibration samples.
    """
    t0 = time.perf_counter()
    ph = _Phases(progress, cancel)
    if mode not in MODES:
        raise ModelInputError(f"unknown quantization mode {mode!r}",
                              f"use one of {', '.join(MODES)}")
    ph.at(0.0, "loading the model")
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    if not loaded.is_float_source:
        raise ModelInputError(
            f"{loaded.path.name} is already a TFLite model: quantization needs the float model",
            "pass the .keras / .h5 file or SavedModel folder it was converted from")
    ph.at(0.02, "converting the float reference")
    float_tfl = verify_tflite(convert(loaded, "float", cancel=cancel))
    in_spec, _ = io_specs(float_tfl)
    shape = in_spec.shape[1:]
    cal = calib if isinstance(calib, Dataset) else load_dataset(calib, input_shape=shape,
                                                                labels=labels)
    ev = None
    if eval_data is not None:
        ev = eval_data if isinstance(eval_data, Dataset) else load_dataset(
            eval_data, input_shape=shape, labels=labels)
    label_names = list(labels) if labels else (ev.label_names if ev else None)
    data = convert(loaded, mode, cal.x, progress=ph.sub(0.05, 0.35), cancel=cancel)
    tfl = verify_tflite(data)
    ph.at(0.35, "evaluating the float model")
    target = ev if ev is not None else cal
    float_out = predict_float(loaded, target.x, cancel=cancel)
    ph.at(0.45, "running the quantized model as the device would")
    run = run_as_device(tfl, target.x, progress=ph.sub(0.45, 0.75), cancel=cancel)
    cmp = compare(float_out, run.outputs, target.y if ev is not None else None, label_names)
    ph.at(0.75, "analyzing the quantized model")
    analysis = analyze_tflite(tfl, measure=measure_arena, progress=ph.sub(0.75, 0.98),
                              cancel=cancel)
    ph.check()
    out_path = Path(output) if output else loaded.path.with_name(
        f"{loaded.path.stem}_{mode.replace('-', '_')}.tflite")
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out_path)
    q_in, q_out = io_specs(tfl)
    report = QuantizeReport(
        mode=mode, float_size=len(float_tfl.data), quantized_size=len(data),
        float_accuracy=cmp.float_accuracy, quantized_accuracy=cmp.quantized_accuracy,
        agreement=cmp.agreement, per_class=cmp.per_class, output_rmse=cmp.output_rmse,
        arena_bytes=analysis["arena_bytes"], arena_method=analysis["arena_method"],
        ops=analysis["ops"], tflm_compatible=analysis["tflm_compatible"],
        tflm_error=analysis["tflm_error"], sha256=hashlib.sha256(data).hexdigest(),
        output=str(out_path), card=None, engine=run.engine,
        evaluated_on="eval" if ev is not None else "calib", eval_samples=cmp.n,
        calib_samples=len(cal), input=_io(q_in), output_tensor=_io(q_out),
        source_sha256=loaded.sha256, labels=label_names,
        tflm_verdict=analysis.get("tflm_verdict"))
    report.seconds = round(time.perf_counter() - t0, 3)
    card = {
        "model": out_path.name, "sha256": report.sha256, "size": report.quantized_size,
        "mode": mode, "labels": label_names,
        "input": report.input, "output": report.output_tensor,
        **arena_figure(analysis["arena_bytes"], analysis["arena_method"]),
        "source": {"file": loaded.path.name, "kind": loaded.kind, "sha256": loaded.sha256,
                   "float_tflite_size": report.float_size},
        "calibration": {"file": Path(cal.source).name, "sha256": cal.sha256,
                        "samples": len(cal)},
        "evaluation": {"file": Path(target.source).name, "sha256": target.sha256,
                       "samples": cmp.n, "labelled": target.y is not None and ev is not None,
                       "engine": run.engine},
        "report": {k: getattr(report, k) for k in (
            "float_accuracy", "quantized_accuracy", "agreement", "per_class", "output_rmse",
            "tflm_compatible", "tflm_error", "tflm_verdict", "ops")},
        "drift_baseline": drift_baseline(run.outputs, label_names),
        **(extra_card or {}),
    }
    report.card = str(write_card(out_path, card))
    ph.at(1.0, f"quantized: {report.quantized_size} bytes")
    return report
