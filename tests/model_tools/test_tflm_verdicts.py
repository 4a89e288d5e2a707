"""TFLM verdicts with a reason (issue 14 item 3): for each of TFLM's common failures, a small
model that really fails in tflite-micro, and a verdict naming the op (index, builtin, version),
the tensor, TFLM's own message and a fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tflite_edit import repack

from model_tools.analyze import analyze, tflm_hazards
from model_tools.tflm import TflmProcess, check_model, tflm_available
from model_tools.tflm_verdict import explain
from model_tools.verify import verify_tflite

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")




def _verdict(data: bytes) -> tuple[dict, object]:
    sg = verify_tflite(data).main
    check = check_model(data)
    assert not check.ok
    return explain(sg, check, tflm_hazards(sg)), sg


def _custom(code: bytes):
    def edit(m) -> None:  # opcode 0 (the example's first operator's) becomes a custom op
        m.operatorCodes[0].builtinCode = m.operatorCodes[0].deprecatedBuiltinCode = 32
        m.operatorCodes[0].customCode = code
    return edit


def test_missing_builtin_is_named_with_tensor_message_and_fix(tf, tmp_path: Path,
                                                               capsys) -> None:
    fn = tf.function(lambda x: tf.math.atan2(x, x + 1.0))
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function(tf.TensorSpec([1, 8], tf.float32))], fn)
    path = tmp_path / "atan2.tflite"
    path.write_bytes(conv.convert())
    from app.cli import main

    assert main(["analyze", str(path), "--json", "--no-measure"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    v = result["tflm_verdict"]
    sg = verify_tflite(path.read_bytes()).main
    atan = next(op for op in sg.operators if op.op == "ATAN2")
    assert (v["kind"], v["op"], v["op_index"], v["version"]) == (
        "missing_op", "ATAN2", atan.index, atan.version)
    assert v["tensor"] in atan.inputs and v["tensor_dtype"] == "float32"
    assert "Didn't find op for builtin opcode 'ATAN2'" in v["tflm_message"]  # TFLM's words
    assert "atan2 outside the model" in v["fix"]
    assert result["tflm_error"].startswith(f"operator {atan.index} ATAN2 (version ")


def test_custom_op_gets_registration_failure_and_resolver_fix(example_tflite: bytes) -> None:
    v, sg = _verdict(repack(example_tflite, _custom(b"MyOp")))
    assert v["kind"] == "custom_op" and v["op"] == "CUSTOM:MyOp"
    assert sg.operators[v["op_index"]].op == "CUSTOM:MyOp"
    assert "Failed to get registration from op code CUSTOM" in v["tflm_message"]
    assert "op resolver" in v["fix"]


def test_flex_op_fix_is_the_converter_option(example_tflite: bytes) -> None:
    v, _ = _verdict(repack(example_tflite, _custom(b"FlexAtan2")))
    assert v["kind"] == "custom_op" and "supported_ops" in v["fix"]


def test_type_mismatch_names_conv_and_the_types(example_tflite: bytes) -> None:
    forged = repack(example_tflite, lambda m: setattr(m.subgraphs[0].tensors[16], "type", 0))
    v, sg = _verdict(forged)
    assert v["kind"] == "type_mismatch" and v["op"] == "CONV_2D"
    op = sg.operators[v["op_index"]]
    assert 16 in (*op.inputs, *op.outputs)
    assert "float32" in v["reason"] and "int8" in v["reason"]
    assert "input->type != output->type" in v["tflm_message"] and "--mode int8" in v["fix"]


def test_kernel_check_failure_is_op_failed_with_tflm_line(example_tflite: bytes) -> None:
    forged = repack(example_tflite,
                     lambda m: setattr(m.subgraphs[0].tensors[17], "shape", [1, 1, 1, 1]))
    v, _ = _verdict(forged)
    assert v["kind"] == "op_failed" and v["op"] == "RESHAPE"
    assert "num_input_elements != num_output_elements" in v["reason"]


def test_arena_failure_is_explained(example_tflite: bytes) -> None:
    with TflmProcess(example_tflite) as proc:
        check = proc.build(2048)
    v = explain(verify_tflite(example_tflite).main, check, [])
    assert v["kind"] == "arena" and v["op"] is None
    assert "Failed to allocate" in v["tflm_message"] and "2048-byte" in v["reason"]


def test_op_version_is_not_what_tflm_checks(example_tflite: bytes) -> None:
    def edit(m) -> None:
        m.operatorCodes[0].version = 99
    assert check_model(repack(example_tflite, edit)).ok  # so the verdicts never suggest it


def test_softmax_abort_verdict_in_analyze_and_quantize_report(tf, tmp_path: Path) -> None:
    import keras

    from model_tools.quantize import quantize

    keras.utils.set_random_seed(2)
    inp = keras.Input((8,))
    h = keras.layers.Dense(4, kernel_initializer="zeros", bias_initializer="zeros")(inp)
    keras.Model(inp, keras.layers.Softmax()(h)).save(tmp_path / "collapsed.keras")
    np.savez(tmp_path / "calib.npz",
             x=np.random.default_rng(0).uniform(-1, 1, (8, 8)).astype(np.float32))
    report = quantize(tmp_path / "collapsed.keras", tmp_path / "calib.npz",
                      output=tmp_path / "c_int8.tflite", measure_arena=False)
    v = report.tflm_verdict
    assert report.tflm_compatible is False and v is not None
    sg = verify_tflite((tmp_path / "c_int8.tflite").read_bytes()).main
    assert v["kind"] == "softmax_scale" and sg.operators[v["op_index"]].op == "SOFTMAX"
    assert v["tensor"] == sg.operators[v["op_index"]].inputs[0]
    assert "crashed" in v["tflm_message"] and "SIGABRT" in v["tflm_message"]
    assert "2^-26" in v["reason"] and "calibration" in v["fix"]
    assert report.tflm_error == v["text"]
    again = analyze(tmp_path / "c_int8.tflite", measure=False)["tflm_verdict"]
    assert again["kind"] == "softmax_scale" and again["op_index"] == v["op_index"]
