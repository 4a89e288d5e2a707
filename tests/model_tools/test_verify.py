"""FlatBuffer / TFLite verification: real models pass; truncated, bit-flipped and forged
files are refused with InvalidModelError (never any other exception, never a crash)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tflite_edit import repack

from model_tools.errors import InvalidModelError
from model_tools.fb_schema import tflite_schema
from model_tools.verify import verify_flatbuffer, verify_tflite


def _tf_flatbuffer_ok(tf, data: bytes) -> bool:
    """TensorFlow Lite's own C++ flatbuffers verifier (run by its Interpreter constructor)."""
    try:
        tf.lite.Interpreter(model_content=bytes(data))
    except ValueError as exc:
        if "not a valid Flatbuffer" in str(exc):
            return False
    except Exception:  # other failures are not about the wire format
        pass
    return True




def test_schema_reflection_covers_the_model_tables() -> None:
    s = tflite_schema()
    kinds = {f.name: f.kind for f in s.tables["Tensor"]}
    assert kinds["Shape"] == "vector_scalar" and kinds["Quantization"] == "table"
    assert {f.name: f.kind for f in s.tables["Operator"]}["BuiltinOptions"] == "union"
    # every union member names a table the verifier knows
    for union in ("BuiltinOptions", "BuiltinOptions2", "QuantizationDetails"):
        members = [m for m in s.enums[union].values() if m != "NONE"]
        assert members and all(m in s.tables for m in members)


def test_real_model_verifies(example_tflite: bytes) -> None:
    m = verify_tflite(example_tflite)
    assert m.main.inputs and m.main.outputs
    assert m.main.tensors[m.main.inputs[0]].shape == (1, 128, 3)
    assert "CONV_2D" in {op.op for op in m.main.operators}


@pytest.mark.parametrize("cut", [0, 3, 7, 8, 100, 1000, -1])
def test_truncated_is_refused(example_tflite: bytes, cut: int) -> None:
    with pytest.raises(InvalidModelError):
        verify_tflite(example_tflite[:cut] if cut >= 0 else example_tflite[:-16])


def test_wrong_identifier_is_refused(example_tflite: bytes) -> None:
    data = example_tflite[:4] + b"XXXX" + example_tflite[8:]
    with pytest.raises(InvalidModelError, match="identifier"):
        verify_tflite(data)


@pytest.mark.parametrize("edit, match", [
    (lambda m: setattr(m, "version", 2), "schema version"),
    (lambda m: setattr(m.subgraphs[0].tensors[0], "buffer", 9999), "buffer index"),
    (lambda m: setattr(m.subgraphs[0].operators[0], "opcodeIndex", 500), "opcode index"),
    (lambda m: setattr(m.subgraphs[0].operators[1], "inputs", [77, 15, 14]), "input tensor"),
    (lambda m: setattr(m.subgraphs[0], "outputs", [-1]), "out of range"),
    (lambda m: setattr(m, "subgraphs", []), "no subgraph"),
    (lambda m: setattr(m.buffers[m.subgraphs[0].tensors[15].buffer], "data",
                       m.buffers[m.subgraphs[0].tensors[15].buffer].data[:10]), "needs"),
    (lambda m: setattr(m.subgraphs[0].tensors[0].quantization, "zeroPoint", [0, 0]),
     r"tensor 0 .*quantization\.zero_point has 2 values for 1 scales"),
])
def test_forged_semantics_are_refused(example_tflite: bytes, edit, match: str) -> None:
    forged = repack(example_tflite, edit)
    verify_flatbuffer(forged)  # still a well-formed FlatBuffer ...
    with pytest.raises(InvalidModelError, match=match):  # ... but not a model TFLM can trust
        verify_tflite(forged)


def test_repacked_model_still_verifies(example_tflite: bytes) -> None:
    verify_tflite(repack(example_tflite, lambda m: None))


@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutations_never_crash_and_are_at_least_as_strict_as_tflite(example_tflite, tf,
                                                                     data) -> None:
    buf = bytearray(example_tflite)
    kind = data.draw(st.sampled_from(["flip", "byte", "word", "truncate", "splice"]))
    if kind == "flip":
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos] ^= 1 << data.draw(st.integers(0, 7))
    elif kind == "byte":
        buf[data.draw(st.integers(0, len(buf) - 1))] = data.draw(st.integers(0, 255))
    elif kind == "word":  # forged offsets / lengths
        pos = data.draw(st.integers(0, len(buf) // 4 - 1)) * 4
        buf[pos:pos + 4] = data.draw(st.integers(0, 2**32 - 1)).to_bytes(4, "little")
    elif kind == "truncate":
        buf = buf[:data.draw(st.integers(0, len(buf) - 1))]
    else:
        pos = data.draw(st.integers(0, len(buf) - 1))
        buf[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
    try:
        verify_tflite(bytes(buf))
        accepted = True
    except InvalidModelError as exc:
        assert exc.exit_code == 2 and "\n" not in exc.message
        accepted = False
    if accepted:  # whatever we accept, TFLite's own FlatBuffer verifier accepts too
        assert _tf_flatbuffer_ok(tf, bytes(buf))
