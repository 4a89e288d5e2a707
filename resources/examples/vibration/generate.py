"""Regenerate the bundled vibration example (model, data, int8 TFLite model, card, labels).

Deterministic: the data come from the virtual board's synthetic vibration source with fixed
seeds, and training runs with fixed seeds and deterministic ops. Run from the repo root:

    uv run python resources/examples/vibration/generate.py

Writes next to this script: ``model.keras``, ``calib.npz`` (x), ``eval.npz`` (x, y),
``labels.txt``, ``model_int8.tflite`` and ``model_int8.tflite.card.json``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
if str(ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from device_drivers.virtual.signal import SAMPLE_RATE_HZ, STATES, WINDOW, VibrationSource  # noqa: E402

TRAIN_SEED, CALIB_SEED, EVAL_SEED, TF_SEED = 101, 202, 303, 7
TRAIN_PER_CLASS, CALIB_PER_CLASS, EVAL_PER_CLASS = 400, 40, 80


def make_data() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {
        "train": VibrationSource(TRAIN_SEED).dataset(TRAIN_PER_CLASS),
        "calib": VibrationSource(CALIB_SEED).dataset(CALIB_PER_CLASS),
        "eval": VibrationSource(EVAL_SEED).dataset(EVAL_PER_CLASS),
    }


def build_model():
    import keras
    from keras import layers

    inputs = keras.Input(shape=(WINDOW, 3), name="accel")
    x = layers.Conv1D(8, 7, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv1D(16, 5, strides=2, padding="same", activation="relu")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Conv1D(16, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling1D()(x)
    x = layers.Dense(16, activation="relu")(x)
    outputs = layers.Dense(len(STATES), activation="softmax", name="scores")(x)
    model = keras.Model(inputs, outputs, name="vibration_classifier")
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def train(data, epochs: int):
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(TF_SEED)
    tf.config.experimental.enable_op_determinism()
    model = build_model()
    x, y = data["train"]
    model.fit(x, y, epochs=epochs, batch_size=32, shuffle=True, verbose=0,
              validation_data=data["eval"])
    return model


def _save_without_optimizer(model, path: Path) -> None:
    """Inference-only copy: the optimizer state would double the file for nothing."""
    import keras

    bare = keras.models.clone_model(model)
    bare.set_weights(model.get_weights())
    bare.save(path)


def _convert_int8(model, calib: np.ndarray) -> bytes:
    # Temporary until model_tools.quantize lands.
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([s[None]] for s in calib)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def _int8_accuracy(tflite: bytes, x: np.ndarray, y: np.ndarray) -> float:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(tflite, arena_size=64 * 1024)
    inp, outp = interp.get_input_details(0), interp.get_output_details(0)
    s, z = inp["quantization_parameters"]["scales"][0], inp["quantization_parameters"]["zero_points"][0]
    hits = 0
    for xi, yi in zip(x, y):
        q = np.clip(np.round(xi / s) + z, -128, 127).astype(np.int8)[None]
        interp.set_input(q, 0)
        interp.invoke()
        hits += int(np.argmax(interp.get_output(0)[0]) == yi)
    return hits / len(y)


def _write_card(out: Path, tflite: bytes, acc: float, q_acc: float) -> None:
    import hashlib
    import json

    card = {"model": "model_int8.tflite", "sha256": hashlib.sha256(tflite).hexdigest(),
            "size": len(tflite), "mode": "int8", "labels": list(STATES),
            "float_accuracy": acc, "quantized_accuracy": q_acc}
    (out / "model_int8.tflite.card.json").write_text(json.dumps(card, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: here)")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    data = make_data()
    t0 = time.perf_counter()
    model = train(data, args.epochs)
    x_eval, y_eval = data["eval"]
    acc = float(np.mean(np.argmax(model.predict(x_eval, verbose=0), axis=1) == y_eval))
    print(f"trained in {time.perf_counter() - t0:.1f} s, float eval accuracy {acc:.4f}, "
          f"{model.count_params()} params")

    _save_without_optimizer(model, out / "model.keras")
    np.savez_compressed(out / "calib.npz", x=data["calib"][0])
    np.savez_compressed(out / "eval.npz", x=x_eval, y=y_eval)
    (out / "labels.txt").write_text("\n".join(STATES) + "\n")

    t0 = time.perf_counter()
    tflite = _convert_int8(model, data["calib"][0])
    (out / "model_int8.tflite").write_bytes(tflite)
    q_acc = _int8_accuracy(tflite, x_eval, y_eval)
    print(f"quantized in {time.perf_counter() - t0:.1f} s: {len(tflite)} bytes, "
          f"int8 accuracy {q_acc:.4f}")
    _write_card(out, tflite, acc, q_acc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
