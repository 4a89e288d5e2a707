"""Each load path, and Keras safe mode: a model file never runs code."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from model_tools.errors import InvalidModelError, ModelInputError, UnsafeModelError
from model_tools.loading import load_model, unsafe_reasons


def test_tflite_path_is_verified(example_dir: Path) -> None:
    m = load_model(example_dir / "model_int8.tflite")
    assert m.kind == "tflite" and m.tflite is not None and m.size == len(m.tflite.data)


def test_keras_file_loads_with_same_outputs(tiny_keras) -> None:
    model, folder = tiny_keras
    x = np.ones((2, 8), np.float32)
    for name in ("tiny.keras", "tiny.h5"):
        loaded = load_model(folder / name)
        assert loaded.kind == "keras"
        np.testing.assert_allclose(loaded.keras_model(x).numpy(), model(x).numpy(), rtol=1e-6)


def test_savedmodel_folder(tiny_keras) -> None:
    from model_tools.convert import predict_float

    model, folder = tiny_keras
    loaded = load_model(folder / "tiny_saved")
    assert loaded.kind == "savedmodel" and len(loaded.sha256) == 64
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    np.testing.assert_allclose(predict_float(loaded, x), model(x).numpy(), rtol=1e-5)


def _lambda_model():
    import keras

    inputs = keras.Input(shape=(4,))
    # writes the marker file whenever the layer's code runs
    out = keras.layers.Lambda(lambda t: t * 2.0 + 0 * len(
        open(__import__("os").environ["TINYOPS_TEST_MARKER"], "w").name))(inputs)  # noqa: SIM115
    return keras.Model(inputs, out)


def test_lambda_layers_are_refused(tf, tmp_path: Path, monkeypatch) -> None:
    marker = tmp_path / "ran.txt"
    monkeypatch.setenv("TINYOPS_TEST_MARKER", str(marker))
    model = _lambda_model()
    model.save(tmp_path / "lam.keras")
    model.save(tmp_path / "lam.h5")
    marker.unlink(missing_ok=True)
    for name in ("lam.keras", "lam.h5"):
        with pytest.raises(UnsafeModelError, match="Lambda") as info:
            load_model(tmp_path / name)
        assert info.value.exit_code == 2
    assert not marker.exists()


def test_custom_objects_are_refused(tf, tmp_path: Path) -> None:
    import keras

    @keras.saving.register_keras_serializable(package="evil")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inputs = keras.Input(shape=(4,))
    keras.Model(inputs, Doubler()(inputs)).save(tmp_path / "custom.keras")
    with pytest.raises(UnsafeModelError, match="custom object"):
        load_model(tmp_path / "custom.keras")


def test_unsafe_reasons_walks_nested_configs() -> None:
    cfg = {"class_name": "Functional", "module": "keras", "config": {"layers": [
        {"class_name": "Dense", "module": "keras.layers", "config": {"name": "d"}},
        {"class_name": "Sequential", "module": "keras", "config": {"layers": [
            {"class_name": "Lambda", "module": "keras.layers", "config": {"name": "l"}}]}}]}}
    assert unsafe_reasons(cfg) == ["a Lambda layer (l)"]
    cfg["config"]["layers"][0]["module"] = "mypkg.layers"
    assert len(unsafe_reasons(cfg)) == 2


@pytest.mark.parametrize("name, content, error", [
    ("m.onnx", b"x", ModelInputError),
    ("broken.keras", b"not a zip", InvalidModelError),
    ("empty.tflite", b"", InvalidModelError),
])
def test_bad_files_give_input_errors(tmp_path: Path, name, content, error) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(error) as info:
        load_model(tmp_path / name)
    assert info.value.exit_code == 2


def test_missing_and_non_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="not found"):
        load_model(tmp_path / "nope.tflite")
    with pytest.raises(ModelInputError, match="SavedModel"):
        load_model(tmp_path)


def test_keras_zip_without_config(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "x.keras", "w") as zf:
        zf.writestr("metadata.json", "{}")
    with pytest.raises(InvalidModelError):
        load_model(tmp_path / "x.keras")
