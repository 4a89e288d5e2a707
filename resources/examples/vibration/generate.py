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

    from model_tools.quantize import quantize

    report = quantize(out / "model.keras", out / "calib.npz", eval_data=out / "eval.npz",
                      mode="int8", output=out / "model_int8.tflite", labels=list(STATES),
                      extra_card={"sample_rate_hz": SAMPLE_RATE_HZ, "window": WINDOW,
                                  "axes": ["x", "y", "z"], "units": "g",
                                  "generator": "resources/examples/vibration/generate.py"})
    print(f"quantized in {report.seconds:.1f} s: float {report.float_size} B -> int8 "
          f"{report.quantized_size} B, accuracy {report.float_accuracy:.4f} -> "
          f"{report.quantized_accuracy:.4f}, arena {report.arena_bytes} B ({report.engine})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
