"""Operators that make TFLM abort, named from the model alone: an int8 SOFTMAX whose input
scale collapsed (what aborts TFLM on an untrained Keras MobileNetV2 quantized to int8)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _oracle import Oracle

from model_tools.analyze import SOFTMAX_MIN_BETA_SCALE, analyze, tflm_hazards
from model_tools.tflm import tflm_available
from model_tools.verify import verify_tflite

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")


def _int8(tf, model, shape: tuple[int, ...]) -> bytes:
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    rng = np.random.default_rng(0)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.uniform(-1, 1, (1, *shape)).astype(np.float32)]
                                           for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return bytes(conv.convert())


@pytest.fixture(scope="module")
def softmax_models(tf) -> dict[str, bytes]:
    """Dense -> softmax with all-zero weights (logits always 0: the calibrated range collapses,
    as in an untrained MobileNetV2) and with random weights (a normal range)."""
    import keras

    out = {}
    for name, init in (("collapsed", "zeros"), ("normal", "glorot_uniform")):
        keras.utils.set_random_seed(2)
        inp = keras.Input((8,))
        h = keras.layers.Dense(4, kernel_initializer=init, bias_initializer="zeros")(inp)
        out[name] = _int8(tf, keras.Model(inp, keras.layers.Softmax()(h)), (8,))
    return out


def test_collapsed_softmax_is_named_and_really_aborts_tflm(softmax_models) -> None:
    sg = verify_tflite(softmax_models["collapsed"]).main
    (hazard,) = tflm_hazards(sg)
    softmax = next(op for op in sg.operators if op.op == "SOFTMAX")
    assert (hazard["op"], hazard["op_index"], hazard["version"]) == (
        "SOFTMAX", softmax.index, softmax.version)
    assert sg.tensors[hazard["tensor"]].scales[0] <= SOFTMAX_MIN_BETA_SCALE
    assert "2^-26" in hazard["reason"] and "calibration" in hazard["fix"]
    oracle = Oracle()
    try:
        assert oracle.tflite(softmax_models["collapsed"]) == (True, "")  # TFLite runs it,
        ok, msg = oracle.tflm(softmax_models["collapsed"])  # TFLM aborts (SIGABRT)
        assert not ok and "crashed" in msg, msg
        assert oracle.tflm(softmax_models["normal"]) == (True, "")
    finally:
        oracle.close()


def test_normal_softmax_has_no_hazard(softmax_models) -> None:
    assert tflm_hazards(verify_tflite(softmax_models["normal"]).main) == []


def test_analyze_explains_the_abort_by_op(softmax_models, tmp_path: Path) -> None:
    path = tmp_path / "collapsed.tflite"
    path.write_bytes(softmax_models["collapsed"])
    result = analyze(path, measure=False)
    assert result["tflm_compatible"] is False and result["failing_op"] == "SOFTMAX"
    assert result["tflm_error"].startswith("operator ") and "SOFTMAX" in result["tflm_error"]
    assert result["tflm_hazards"][0]["fix"]
