"""TensorFlow Lite converter wrappers (TensorFlow is imported inside the functions).

Modes:
- ``int8``: full-integer quantization, int8 input and output (what TFLM runs best); needs
  calibration data.
- ``int8-fallback``: integer where possible, float kernels where an op has no int8 version;
  float input and output.
- ``dynamic``: int8 weights, float activations (dynamic range). Hybrid kernels: most do not
  exist in TFLM.
- ``float16``: float16 weights, float compute.
- ``float``: no quantization (the reference).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from model_tools.errors import Cancelled, ModelInputError, ModelToolsError
from model_tools.loading import LoadedModel
from model_tools.loading import import_tf as import_tf  # re-exported: the GUI imports it here
from tinyops_base.progress import Progress

log = logging.getLogger(__name__)

MODES = ("int8", "int8-fallback", "dynamic", "float16")


def _converter(tf: Any, model: LoadedModel) -> Any:
    if model.kind == "keras":
        return tf.lite.TFLiteConverter.from_keras_model(model.keras_model)
    if model.kind == "savedmodel":
        return tf.lite.TFLiteConverter.from_saved_model(str(model.path))
    raise ModelInputError(
        f"{model.path.name} is already a TFLite model: quantization needs the float model",
        "pass the .keras / .h5 file or SavedModel folder it was converted from")


def convert(model: LoadedModel, mode: str = "float", calib: np.ndarray | None = None, *,
            progress: Progress | None = None, cancel: Any = None) -> bytes:
    """Convert a Keras model / SavedModel to TFLite bytes in ``mode``."""
    if mode not in (*MODES, "float"):
        raise ModelInputError(f"unknown quantization mode {mode!r}",
                              f"use one of {', '.join(MODES)}")
    tf = import_tf()
    conv = _converter(tf, model)
    if mode in ("int8", "int8-fallback"):
        if calib is None or len(calib) == 0:
            raise ModelInputError(f"mode {mode} needs calibration data", "pass --calib DATA")
        n = len(calib)

        def representative() -> Iterator[list[np.ndarray]]:
            for i, sample in enumerate(calib):
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                if progress and (i % 16 == 0 or i == n - 1):
                    progress((i + 1) / n, f"calibrating {i + 1}/{n}")
                yield [np.asarray(sample, dtype=np.float32)[None]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        if mode == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
                                              tf.lite.OpsSet.TFLITE_BUILTINS]
    elif mode == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif mode == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    try:
        # The converter prints its SavedModel export notes to stdout: keep stdout for results
        # (``--json`` prints exactly one object there).
        with contextlib.redirect_stdout(sys.stderr), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
            data = conv.convert()
    except Cancelled:
        raise
    except Exception as exc:
        if cancel is not None and cancel.is_set():
            raise Cancelled() from None
        text = " ".join(str(exc).split())[:300]
        hint = ("try --mode int8-fallback (float kernels for ops without an int8 version)"
                if mode == "int8" else "check that the model converts with tf.lite")
        raise ModelToolsError(f"the TFLite converter failed ({mode}): {text}", hint) from None
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    return bytes(data)


def predict_float(model: LoadedModel, x: np.ndarray, *, batch: int = 256,
                  cancel: Any = None) -> np.ndarray:
    """Outputs of the float source model (first output) for samples ``x``."""
    tf = import_tf()
    outs = []
    call: Callable[[np.ndarray], Any]
    if model.kind == "keras":
        fn = model.keras_model
        call = lambda b: fn(b, training=False)  # noqa: E731
    elif model.kind == "savedmodel":
        loaded = tf.saved_model.load(str(model.path))
        sig = loaded.signatures.get("serving_default")
        if sig is None:
            raise ModelInputError(f"{model.path.name} has no serving_default signature",
                                  "export the SavedModel with a serving signature")
        in_name = next(iter(sig.structured_input_signature[1]))
        out_name = sorted(sig.structured_outputs)[0]
        call = lambda b: sig(**{in_name: tf.constant(b)})[out_name]  # noqa: E731
    else:
        raise ModelInputError("float predictions need a Keras model or SavedModel")
    for start in range(0, len(x), batch):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        y = call(np.asarray(x[start:start + batch], dtype=np.float32))
        if isinstance(y, (list, tuple)):
            y = y[0]
        if isinstance(y, dict):
            y = y[sorted(y)[0]]
        outs.append(np.asarray(y))
    return np.concatenate(outs).astype(np.float32)
