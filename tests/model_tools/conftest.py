"""Shared, expensive fixtures for the model_tools tests (built once per session)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "vibration"
LABELS = ["normal", "imbalance", "bearing_fault"]

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="session")
def example_dir() -> Path:
    return EXAMPLE


@pytest.fixture(scope="session")
def example_tflite() -> bytes:
    return (EXAMPLE / "model_int8.tflite").read_bytes()


@pytest.fixture(scope="session")
def tf():
    import tensorflow

    return tensorflow


@pytest.fixture(scope="session")
def quantized(tmp_path_factory: pytest.TempPathFactory, tf):
    """The bundled example quantized once (int8), with the progress it reported."""
    from model_tools.quantize import quantize

    out = tmp_path_factory.mktemp("quantized") / "vib_int8.tflite"
    events: list[tuple[float, str]] = []
    report = quantize(EXAMPLE / "model.keras", EXAMPLE / "calib.npz",
                      eval_data=EXAMPLE / "eval.npz", mode="int8", output=out, labels=LABELS,
                      progress=lambda f, m: events.append((f, m)), cancel=threading.Event())
    return report, out, events


@pytest.fixture(scope="session")
def tiny_keras(tmp_path_factory: pytest.TempPathFactory, tf):
    """A tiny dense Keras model saved as .keras, .h5 and a SavedModel folder."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input(shape=(8,), name="x")
    h = keras.layers.Dense(6, activation="relu", bias_initializer="random_normal")(inputs)
    outputs = keras.layers.Dense(3, activation="softmax", bias_initializer="random_normal")(h)
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("tiny")
    model.save(folder / "tiny.keras")
    model.save(folder / "tiny.h5")
    model.export(folder / "tiny_saved", verbose=False)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    np.savez(folder / "calib.npz", x=x)
    return model, folder
