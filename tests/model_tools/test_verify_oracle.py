"""The verifier against TFLite's and TFLM's own C++ in both directions, over generated models.

- What TFLite's interpreter accepts (constructs and allocates), we accept.
- What we reject, TFLite rejects too, or TFLM cannot use (it fails or crashes on it).
- Every rejection is one line naming the tensor, operator or field, and why.

Models: the bundled example and a small int8 conv / depthwise / dense network made here, with
semantic fields forged through the schema's object API (quantization, indices, shapes,
buffers): still well-formed FlatBuffers, so the checks behind the wire format are exercised.
"""

from __future__ import annotations

import os
import re

import flatbuffers
import numpy as np
import pytest
from _oracle import Oracle, with_bias_axis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from model_tools.errors import InvalidModelError
from model_tools.fb_schema import generated_module
from model_tools.tflm import tflm_available
from model_tools.verify import verify_tflite

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")
EXAMPLES = int(os.environ.get("TINYOPS_FUZZ_EXAMPLES", "0")) or 120
# a rejection names what it is about
NAMED = re.compile(r"tensor \d+|operator \d+|buffer \d+|subgraph|schema version|opcode|"
                   r"metadata|signature|identifier|FlatBuffer")


@pytest.fixture(scope="module")
def oracle():
    o = Oracle()
    yield o
    o.close()


@pytest.fixture(scope="module")
def dwconv_int8(tf) -> bytes:
    """A small int8 network with per-channel CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED."""
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((16, 16, 1))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    h = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(h)
    h = keras.layers.Conv2D(8, 1, activation="relu")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    out = keras.layers.Dense(3, activation="softmax")(h)
    conv = tf.lite.TFLiteConverter.from_keras_model(keras.Model(inp, out))
    rng = np.random.default_rng(0)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 16, 16, 1), np.float32)]
                                           for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = conv.inference_output_type = tf.int8
    return bytes(conv.convert())


def _repack(data: bytes, model) -> bytes:
    b = flatbuffers.Builder(len(data) + 4096)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _forge(draw, data: bytes) -> bytes:
    gen = generated_module()
    m = gen.ModelT.InitFromObj(gen.Model.GetRootAs(data, 0))
    sg = m.subgraphs[0]
    n = len(sg.tensors)
    for _ in range(draw(st.integers(1, 2))):
        t = sg.tensors[draw(st.integers(0, n - 1))]
        q = t.quantization
        kind = draw(st.sampled_from(["qdim", "scales", "zero_points", "buffer", "shape", "type",
                                     "op_input", "op_output", "opcode", "io", "data",
                                     "version"]))
        if kind == "qdim" and q is not None:
            q.quantizedDimension = draw(st.integers(-2, 5))
        elif kind == "scales" and q is not None and q.scale is not None:
            q.scale = list(q.scale)[:draw(st.integers(0, len(q.scale)))] + [0.5] * draw(
                st.integers(0, 2))
        elif kind == "zero_points" and q is not None and q.zeroPoint is not None:
            q.zeroPoint = [0] * draw(st.integers(0, len(q.zeroPoint) + 2))
        elif kind == "buffer":
            t.buffer = draw(st.integers(0, len(m.buffers) + 1))
        elif kind == "shape" and t.shape is not None and len(t.shape):
            shape = [int(d) for d in t.shape]
            shape[draw(st.integers(0, len(shape) - 1))] = draw(st.integers(0, 300))
            t.shape = shape if draw(st.booleans()) else shape[:-1]
        elif kind == "type":
            t.type = draw(st.integers(0, 20))
        elif kind in ("op_input", "op_output"):
            op = sg.operators[draw(st.integers(0, len(sg.operators) - 1))]
            vec = list(op.inputs if kind == "op_input" else op.outputs)
            vec[draw(st.integers(0, len(vec) - 1))] = draw(st.integers(-2, n + 2))
            setattr(op, "inputs" if kind == "op_input" else "outputs", vec)
        elif kind == "opcode":
            sg.operators[draw(st.integers(0, len(sg.operators) - 1))].opcodeIndex = draw(
                st.integers(0, len(m.operatorCodes) + 1))
        elif kind == "io":
            sg.inputs = [draw(st.integers(-1, n + 1))]
        elif kind == "data":
            bufs = [b for b in m.buffers if b.data is not None and len(b.data) > 1]
            if bufs:
                b = bufs[draw(st.integers(0, len(bufs) - 1))]
                b.data = b.data[:draw(st.integers(0, len(b.data) - 1))]
        elif kind == "version":
            m.version = draw(st.integers(0, 4))
    return _repack(data, m)


def _check_both_directions(oracle: Oracle, forged: bytes) -> None:
    try:
        verify_tflite(forged)
        ours, why = True, ""
    except InvalidModelError as exc:
        ours, why = False, exc.message
        assert exc.exit_code == 2 and "\n" not in why
        assert NAMED.search(why), f"rejection does not say what it is about: {why}"
    if ours:
        return  # we may accept more than TFLite (the TFLM-only quirks tested below)
    tfl_ok, _ = oracle.tflite(forged)
    if tfl_ok:  # then TFLM must be unable to use it, or this is a false rejection
        tflm_ok, _ = oracle.tflm(forged)
        assert not tflm_ok, f"false rejection: TFLite and TFLM both run it, we said {why!r}"


@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), base=st.sampled_from(["example", "dwconv"]))
def test_forged_models_both_directions(oracle, example_tflite, dwconv_int8, data, base) -> None:
    model = example_tflite if base == "example" else dwconv_int8
    _check_both_directions(oracle, _forge(data.draw, model))


def test_generated_models_pass_and_tflite_agrees(oracle, example_tflite, dwconv_int8) -> None:
    for model in (example_tflite, dwconv_int8):
        verify_tflite(model)
        assert oracle.tflite(model)[0] and oracle.tflm(model)[0]


def test_person_detection_bias_quirk_is_accepted_because_tflm_runs_it(oracle,
                                                                    dwconv_int8) -> None:
    """TFLM's person-detection model stores ``quantized_dimension`` 3 on its 1-D biases (a
    quirk of the converter that made it). TFLite's interpreter refuses that; TFLM runs it; so
    do we (it was 'tensor 33 per-axis quantization does not match its shape (8,)')."""
    forged, changed = with_bias_axis(dwconv_int8, 3)
    assert changed
    verify_tflite(forged)
    tfl_ok, tfl_msg = oracle.tflite(forged)
    assert not tfl_ok and "quantized_dimension" in tfl_msg
    assert oracle.tflm(forged) == (True, "")


def test_out_of_range_axis_on_a_filter_is_rejected_with_its_name(oracle, example_tflite) -> None:
    gen = generated_module()
    m = gen.ModelT.InitFromObj(gen.Model.GetRootAs(example_tflite, 0))
    idx = next(i for i, t in enumerate(m.subgraphs[0].tensors)
               if len(t.shape) == 2 and t.quantization.scale is not None
               and len(t.quantization.scale) > 1)  # the dense layer's weights
    m.subgraphs[0].tensors[idx].quantization.quantizedDimension = 3
    forged = _repack(example_tflite, m)
    with pytest.raises(InvalidModelError, match=rf"tensor {idx} .*quantized_dimension 3"):
        verify_tflite(forged)
    assert not oracle.tflite(forged)[0]


def test_single_zero_point_for_many_scales_is_accepted(oracle, example_tflite) -> None:
    """TFLM's allocator takes one zero point for all channels (its space saving)."""
    gen = generated_module()
    m = gen.ModelT.InitFromObj(gen.Model.GetRootAs(example_tflite, 0))
    for t in m.subgraphs[0].tensors:
        if t.quantization is not None and t.quantization.scale is not None and len(
                t.quantization.scale) > 1:
            t.quantization.zeroPoint = [0]
    forged = _repack(example_tflite, m)
    verify_tflite(forged)
    assert oracle.tflm(forged) == (True, "")
