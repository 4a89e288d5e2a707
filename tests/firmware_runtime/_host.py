"""Host-side references for the firmware tests: the tflite-micro wheel (x86-64 TFLM)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device_drivers.paths import resources_dir

EXAMPLE = resources_dir() / "examples/vibration/model_int8.tflite"


def quantized_inputs(model: bytes, samples: np.ndarray) -> tuple[bytes, list[np.ndarray]]:
    """Samples quantized with the model's input scale/zero point: (concatenated bytes, arrays)."""
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    spec = interp.get_input_details(0)
    scale, zero = spec["quantization_parameters"]["scales"][0], \
        spec["quantization_parameters"]["zero_points"][0]
    dtype = spec["dtype"]
    info = np.iinfo(dtype)
    arrays = [np.clip(np.round(s / scale + zero), info.min, info.max).astype(dtype)
              .reshape(spec["shape"]) for s in samples]
    return b"".join(a.tobytes() for a in arrays), arrays


def host_outputs(model: bytes, arrays: list[np.ndarray]) -> list[bytes]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    out = []
    for a in arrays:
        interp.set_input(a, 0)
        interp.invoke()
        out.append(np.array(interp.get_output(0), copy=True).tobytes())
    return out


def example_samples(n: int) -> np.ndarray:
    data = np.load(Path(EXAMPLE).parent / "eval.npz")
    return data["x"][:n]
