"""Run a ``.tflite`` model the way a device does, and compare it with the float model.

Device path: float samples -> quantize with the input tensor's scale / zero point (round,
clip) -> run in tflite-micro (child process) -> dequantize the output with its scale / zero
point. Models tflite-micro cannot build, and every model where tflite-micro is not installed
(no wheel for Windows, macOS, Linux on Arm), run in LiteRT's interpreter instead
(:mod:`model_tools.host_interpreter`; the report says which engine ran and why).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from model_tools.errors import ModelInputError
from model_tools.host_interpreter import make_interpreter
from model_tools.tflm import TFLM_MISSING, TflmProcess, check_model, run_model, tflm_available
from model_tools.verify import TensorInfo, TfliteModel
from tinyops_base.progress import Progress

_INT_RANGES = {"INT8": (-128, 127, np.int8), "UINT8": (0, 255, np.uint8),
               "INT16": (-32768, 32767, np.int16)}


def quantize_input(x: np.ndarray, spec: TensorInfo) -> np.ndarray:
    """Float samples -> the raw input tensor dtype (as firmware does before ``Invoke``)."""
    if spec.dtype in _INT_RANGES and spec.scales:
        lo, hi, dtype = _INT_RANGES[spec.dtype]
        q = np.round(np.asarray(x, np.float64) / spec.scales[0]) + spec.zero_points[0]
        return np.clip(q, lo, hi).astype(dtype)
    if spec.dtype == "FLOAT32":
        return np.asarray(x, dtype=np.float32)
    raise ModelInputError(f"input tensor type {spec.dtype} is not supported for evaluation")


def dequantize_output(raw: np.ndarray, spec: TensorInfo) -> np.ndarray:
    if spec.dtype in _INT_RANGES and spec.scales:
        return ((raw.astype(np.float64) - spec.zero_points[0]) * spec.scales[0]).astype(np.float32)
    return np.asarray(raw, dtype=np.float32)


def io_specs(model: TfliteModel) -> tuple[TensorInfo, TensorInfo]:
    sg = model.main
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise ModelInputError(
            f"the model has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs; "
            "evaluation handles one of each", "evaluate multi-input models on the device")
    return sg.tensors[sg.inputs[0]], sg.tensors[sg.outputs[0]]


@dataclass
class DeviceRun:
    outputs: np.ndarray  # dequantized float outputs (N, ...)
    engine: str  # "tflite-micro" | "litert" (| "tf.lite" where LiteRT is missing)
    arena: int | None  # arena used for the run (TFLM)
    tflm_error: str | None  # why TFLM could not run it (engine != "tflite-micro")


def _run_host_interpreter(data: bytes, raw: np.ndarray, cancel: Any) -> tuple[np.ndarray, str]:
    interp, engine = make_interpreter(data)
    interp.allocate_tensors()
    i_idx = interp.get_input_details()[0]["index"]
    o_idx = interp.get_output_details()[0]["index"]
    outs = []
    for sample in raw:
        if cancel is not None and cancel.is_set():
            from model_tools.errors import Cancelled

            raise Cancelled()
        interp.set_tensor(i_idx, sample[None])
        interp.invoke()
        outs.append(interp.get_tensor(o_idx)[0].copy())
    return np.stack(outs), engine


def run_as_device(model: TfliteModel, x: np.ndarray, *, progress: Progress | None = None,
                  cancel: Any = None, proc: TflmProcess | None = None) -> DeviceRun:
    in_spec, out_spec = io_specs(model)
    shape = tuple(in_spec.shape[1:])
    if x.shape[1:] != shape:
        x = x.reshape((len(x), *shape))
    raw = quantize_input(x, in_spec)
    error = None
    if tflm_available():
        own = proc is None
        proc = proc or TflmProcess(model.data)
        try:
            check = check_model(model.data, None, proc)
            if check.ok:
                out = run_model(model.data, raw, arena=check.arena, proc=proc,
                                progress=progress, cancel=cancel)[0]
                return DeviceRun(dequantize_output(out, out_spec), "tflite-micro", check.arena,
                                 None)
            error = check.error
        finally:
            if own:
                proc.close()
    else:
        error = TFLM_MISSING
    out, engine = _run_host_interpreter(model.data, raw, cancel)
    return DeviceRun(dequantize_output(out, out_spec), engine, None, error)


@dataclass
class Comparison:
    n: int
    float_accuracy: float | None
    quantized_accuracy: float | None
    agreement: float | None
    per_class: dict[str, dict[str, Any]] | None
    output_rmse: float


def compare(float_out: np.ndarray, quant_out: np.ndarray, y: np.ndarray | None,
            labels: Sequence[str] | None = None) -> Comparison:
    """Top-1 agreement, accuracies (with labels), per-class accuracy, output RMSE."""
    f = float_out.reshape(len(float_out), -1)
    q = quant_out.reshape(len(quant_out), -1)
    rmse = float(np.sqrt(np.mean((f.astype(np.float64) - q) ** 2)))
    if f.shape[1] < 2:  # regression / single score: no top-1
        return Comparison(len(f), None, None, None, None, rmse)
    fp, qp = f.argmax(axis=1), q.argmax(axis=1)
    agreement = float(np.mean(fp == qp))
    if y is None:
        return Comparison(len(f), None, None, agreement, None, rmse)
    y = np.asarray(y).reshape(-1)
    per_class: dict[str, dict[str, Any]] = {}
    for c in range(f.shape[1]):
        mask = y == c
        name = labels[c] if labels and c < len(labels) else str(c)
        count = int(mask.sum())
        per_class[name] = {
            "count": count,
            "float": float(np.mean(fp[mask] == c)) if count else None,
            "quantized": float(np.mean(qp[mask] == c)) if count else None,
        }
    return Comparison(len(f), float(np.mean(fp == y)), float(np.mean(qp == y)), agreement,
                      per_class, rmse)
