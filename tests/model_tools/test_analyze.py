"""Analysis figures checked against independent sources, and fit verdicts."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest

from model_tools.analyze import BoardLimits, analyze, fit_verdict
from model_tools.tflm import measure_arena, tflm_available

needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")


@pytest.fixture(scope="module")
def example_analysis(example_dir: Path):
    return analyze(example_dir / "model_int8.tflite")


def test_ops_match_tflite_interpreter(example_analysis, example_tflite: bytes, tf) -> None:
    interp = tf.lite.Interpreter(model_content=example_tflite)
    expected = Counter(op["op_name"] for op in interp._get_ops_details())
    assert {o["op"]: o["count"] for o in example_analysis["ops"]} == dict(expected)


def test_params_and_macs_match_the_keras_model(example_analysis, example_dir: Path, tf) -> None:
    import keras

    model = keras.models.load_model(example_dir / "model.keras")
    assert example_analysis["params"] == model.count_params()
    macs = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            length, filters = layer.output.shape[1], layer.filters
            macs += length * filters * layer.kernel_size[0] * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            macs += layer.input.shape[-1] * layer.units
    assert example_analysis["macs"] == macs


def test_io_and_flash(example_analysis, example_tflite: bytes) -> None:
    (inp,) = example_analysis["inputs"]
    assert inp["dtype"] == "int8" and inp["shape"] == [1, 128, 3]
    assert inp["quantization"]["scale"] > 0
    assert example_analysis["flash_bytes"] == len(example_tflite)


@needs_tflm
def test_arena_is_the_measured_minimum(example_analysis, example_tflite: bytes) -> None:
    assert example_analysis["arena_method"] == "measured"
    assert example_analysis["arena_bytes"] == measure_arena(example_tflite).bytes
    assert example_analysis["tflm_compatible"] is True
    assert all(o["tflm"] for o in example_analysis["ops"])


@needs_tflm
def test_unsupported_op_is_reported(tf, tmp_path: Path) -> None:
    fn = tf.function(lambda x: tf.math.atan2(x, x + 1.0))
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function(tf.TensorSpec([1, 8], tf.float32))], fn)
    (tmp_path / "atan.tflite").write_bytes(conv.convert())
    result = analyze(tmp_path / "atan.tflite")
    assert result["tflm_compatible"] is False and result["failing_op"] == "ATAN2"
    support = {o["op"]: o["tflm"] for o in result["ops"]}
    assert support == {"ADD": True, "ATAN2": False}
    assert result["arena_method"] == "estimate" and result["arena_bytes"] > 0


def test_keras_input_is_analyzed_as_float_tflite(tiny_keras) -> None:
    _, folder = tiny_keras
    result = analyze(folder / "tiny.keras", measure=False)
    assert result["kind"] == "keras" and result["converted"]
    assert result["inputs"][0]["dtype"] == "float32"
    assert result["params"] == 8 * 6 + 6 + 6 * 3 + 3


BOARD = BoardLimits("b", flash=1000, ram=500, reserve_flash=200, reserve_ram=100)


@pytest.mark.parametrize("flash, ram, verdict", [
    (100, 100, "fits"),
    (640, 320, "fits"),        # exactly 80 % of what is left
    (641, 100, "tight"),
    (100, 400, "tight"),       # exactly all of the RAM left
    (801, 100, "does not fit"),
    (100, 401, "does not fit"),
    (900, 10, "does not fit"),
])
def test_fit_verdicts(flash: int, ram: int, verdict: str) -> None:
    result = fit_verdict(flash, ram, BOARD)
    assert result["verdict"] == verdict
    assert result["flash"]["available"] == 800 and result["ram"]["available"] == 400


def test_board_limits_from_registry_like_objects(example_dir: Path) -> None:
    reserve = SimpleNamespace(flash=327680, ram=65536, basis="x")
    board = SimpleNamespace(id="nano", name="Nano", flash=1048576, ram=262144,
                            runtime_reserve=reserve)
    limits = BoardLimits.from_board(board)
    assert (limits.flash_available, limits.ram_available) == (720896, 196608)
    as_dict = SimpleNamespace(id="d", flash=10, ram=10, runtime_reserve={"flash": 1, "ram": 2})
    assert BoardLimits.from_board(as_dict).ram_available == 8
    tiny = BoardLimits("tiny", flash=32 * 1024, ram=8 * 1024, reserve_flash=16 * 1024,
                       reserve_ram=4 * 1024)
    result = analyze(example_dir / "model_int8.tflite", board=tiny, measure=False)
    assert result["fit"]["verdict"] == "does not fit"
    assert "ram" in result["fit"]["reason"]
