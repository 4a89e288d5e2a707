"""A corpus of real TinyML architectures, generated here (random weights, no downloads).

    uv run python -m model_tools.corpus OUT_DIR [--only NAME ...]

writes, for each architecture, ``NAME.keras`` (the float source), ``NAME_float.tflite`` (its
unquantized conversion) and ``NAME_calib.npz`` (calibration samples of the input's shape and
range). ``model_tools.quantize`` makes the int8 model from the first and the third, as
``tinyops quantize`` does. The structures follow the published models; weights are random
(seeded), because what is tested is structure: verification, conversion, TFLM support and arena.

- ``mobilenet_v1_025``: MobileNet v1, alpha 0.25, 96x96x1, 2 classes - TFLM's person detection.
- ``mobilenet_v2_035_1ch`` / ``_3ch``: Keras MobileNetV2, alpha 0.35, 96x96x1 / x3, softmax head.
- ``mobilenet_v2_035_1ch_untrained``: the same, exactly as Keras initialises it (issue 14's
  case): its features collapse to ~0, so the int8 softmax input gets a scale of ~8e-9 and TFLM
  aborts (see ``analyze.tflm_hazards``). Every other model gets trained-looking BatchNorm
  statistics.
- ``ds_cnn``: DS-CNN keyword spotting (MLPerf Tiny KWS: 49x10 MFCC, 64 channels, 12 classes).
- ``conv1d_accel``: 1-D conv on 128-sample 3-axis accelerometer windows, 4 classes.
- ``lstm`` / ``gru``: one recurrent layer (32 units) on 32 steps of 8 features, 4 classes,
  unrolled. (Not unrolled, a GRU becomes a WHILE loop, and an LSTM with a static batch becomes
  TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM, whose int8 calibration crashes TensorFlow 2.21's
  converter with SIGSEGV; without a static batch it does not convert at all.)
- ``autoencoder``: MLPerf Tiny anomaly detection (640 in, 4x128, 8 bottleneck, 4x128, 640 out).
- ``resnet8``: MLPerf Tiny image classification (32x32x3, 16/32/64 channels, 10 classes).

TensorFlow / Keras are imported inside the functions (never at import time).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CALIB_SAMPLES = 16
SEED = 7


@dataclass(frozen=True)
class Architecture:
    name: str
    input_shape: tuple[int, ...]
    build: Callable[[Any], Any]  # keras module -> keras.Model
    low: float = -1.0  # calibration range
    high: float = 1.0
    trained_bn: bool = True  # BatchNorm statistics like a trained model's (else Keras' init)


def _mobilenet_v1(keras: Any) -> Any:
    return keras.applications.MobileNet(input_shape=(96, 96, 1), alpha=0.25, weights=None,
                                        classes=2, dropout=0.0)


def _mobilenet_v2(channels: int) -> Callable[[Any], Any]:
    def build(keras: Any) -> Any:
        return keras.applications.MobileNetV2(input_shape=(96, 96, channels), alpha=0.35,
                                              weights=None, classes=2)
    return build


def _ds_cnn(keras: Any) -> Any:
    L = keras.layers
    inp = keras.Input((49, 10, 1))
    h = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same", use_bias=False)(inp)
    h = L.ReLU()(L.BatchNormalization()(h))
    for _ in range(4):
        h = L.DepthwiseConv2D(3, padding="same", use_bias=False)(h)
        h = L.ReLU()(L.BatchNormalization()(h))
        h = L.Conv2D(64, 1, use_bias=False)(h)
        h = L.ReLU()(L.BatchNormalization()(h))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(12, activation="softmax")(h), name="ds_cnn")


def _conv1d(keras: Any) -> Any:
    L = keras.layers
    inp = keras.Input((128, 3))
    h = L.Conv1D(16, 5, padding="same", activation="relu")(inp)
    h = L.MaxPooling1D(2)(h)
    h = L.Conv1D(32, 5, padding="same", activation="relu")(h)
    h = L.GlobalAveragePooling1D()(h)
    return keras.Model(inp, L.Dense(4, activation="softmax")(h), name="conv1d_accel")


def _recurrent(kind: str) -> Callable[[Any], Any]:
    def build(keras: Any) -> Any:
        L = keras.layers
        inp = keras.Input((32, 8), batch_size=1)  # TFLM needs static shapes
        cell = L.LSTM if kind == "lstm" else L.GRU
        h = cell(32, unroll=True)(inp)  # see the module docstring
        return keras.Model(inp, L.Dense(4, activation="softmax")(h), name=kind)
    return build


def _autoencoder(keras: Any) -> Any:
    L = keras.layers
    inp = keras.Input((640,))
    h = inp
    for units in (128, 128, 128, 128, 8, 128, 128, 128, 128):
        h = L.ReLU()(L.BatchNormalization()(L.Dense(units)(h)))
    return keras.Model(inp, L.Dense(640)(h), name="autoencoder")


def _resnet8(keras: Any) -> Any:
    L = keras.layers
    inp = keras.Input((32, 32, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(inp)))
    for filters, stride in ((16, 1), (32, 2), (64, 2)):
        y = L.ReLU()(L.BatchNormalization()(L.Conv2D(filters, 3, strides=stride,
                                                     padding="same")(x)))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if stride != 1 or x.shape[-1] != filters:
            x = L.Conv2D(filters, 1, strides=stride)(x)
        x = L.ReLU()(L.Add()([x, y]))
    x = L.AveragePooling2D(8)(x)
    return keras.Model(inp, L.Dense(10, activation="softmax")(L.Flatten()(x)), name="resnet8")


ARCHITECTURES: dict[str, Architecture] = {a.name: a for a in (
    Architecture("mobilenet_v1_025", (96, 96, 1), _mobilenet_v1),
    Architecture("mobilenet_v2_035_1ch", (96, 96, 1), _mobilenet_v2(1)),
    Architecture("mobilenet_v2_035_3ch", (96, 96, 3), _mobilenet_v2(3)),
    Architecture("mobilenet_v2_035_1ch_untrained", (96, 96, 1), _mobilenet_v2(1),
                 trained_bn=False),
    Architecture("ds_cnn", (49, 10, 1), _ds_cnn),
    Architecture("conv1d_accel", (128, 3), _conv1d),
    Architecture("lstm", (32, 8), _recurrent("lstm")),
    Architecture("gru", (32, 8), _recurrent("gru")),
    Architecture("autoencoder", (640,), _autoencoder),
    Architecture("resnet8", (32, 32, 3), _resnet8),
)}


@dataclass(frozen=True)
class CorpusModel:
    name: str
    keras: Path
    float_tflite: Path
    calib: Path


def paths(out_dir: Path, name: str) -> CorpusModel:
    return CorpusModel(name, out_dir / f"{name}.keras", out_dir / f"{name}_float.tflite",
                       out_dir / f"{name}_calib.npz")


def build_one(name: str, out_dir: str | Path) -> CorpusModel:
    """Build (or reuse, if all three files exist) one corpus model in ``out_dir``."""
    arch = ARCHITECTURES[name]
    out = paths(Path(out_dir), name)
    if out.keras.is_file() and out.float_tflite.is_file() and out.calib.is_file():
        return out
    from model_tools.convert import convert
    from model_tools.loading import import_tf, load_model

    import_tf()
    import keras

    out.keras.parent.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    model = arch.build(keras)
    if arch.trained_bn:
        _randomize_batchnorm(model, np.random.default_rng(SEED))
    model.save(out.keras)
    rng = np.random.default_rng(SEED + 1)
    x = rng.uniform(arch.low, arch.high, (CALIB_SAMPLES, *arch.input_shape)).astype(np.float32)
    np.savez(out.calib, x=x)
    out.float_tflite.write_bytes(convert(load_model(out.keras), "float"))
    return out


def _randomize_batchnorm(model: Any, rng: np.random.Generator) -> None:
    """Fresh BatchNorm layers are identities; give them trained-looking statistics so the
    folded weights (and the quantization ranges) are not degenerate."""
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                               rng.normal(0, 0.1, beta.shape).astype(np.float32),
                               rng.normal(0, 0.1, mean.shape).astype(np.float32),
                               rng.uniform(0.5, 1.5, var.shape).astype(np.float32)])


def build_corpus(out_dir: str | Path, names: list[str] | None = None) -> list[CorpusModel]:
    return [build_one(n, out_dir) for n in (names or list(ARCHITECTURES))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="build the TinyOps model corpus")
    ap.add_argument("out_dir")
    ap.add_argument("--only", nargs="*", choices=sorted(ARCHITECTURES), default=None)
    args = ap.parse_args(argv)
    for m in build_corpus(args.out_dir, args.only):
        print(f"{m.name}: {m.keras} ({m.float_tflite.stat().st_size} B float TFLite)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
