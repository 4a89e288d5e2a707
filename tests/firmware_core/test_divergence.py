"""Per-layer divergence (validate): the host build keeps its operators' outputs on request
(infer ``preserve``, the ``tensor`` command) and validate names the first operator whose
output differs from the host's, with the share of differing elements and the largest
difference. The host per-operator reference is TFLM's Python interpreter with every tensor
kept (``tflm_layers``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from test_core_runtime_group import LABELS, MODEL, _expected_output

from device_drivers.link import DeviceSession
from device_drivers.validate import LayerOutput, tflm_layers, validate

ROOT = Path(__file__).resolve().parents[2]


def _double_layers(sample: np.ndarray) -> list[LayerOutput]:
    """The test double's two operators, computed here: |x| (int8), then the output."""
    v = sample.reshape(-1).astype(np.int16)
    absx = np.where(v == -128, 127, np.abs(v)).astype(np.int8)
    out = np.frombuffer(_expected_output(sample.tobytes()), dtype=np.int8)
    return [LayerOutput("ABS", "abs", absx), LayerOutput("MEAN", "mean", out)]


def _board_with_model(host_board) -> DeviceSession:
    import hashlib

    dev = DeviceSession.open(host_board().port)
    assert dev.upload_file(MODEL, "/lfs/model-a.tflite").verified
    dev.load_model("/lfs/model-a.tflite", sha256=hashlib.sha256(MODEL).digest(), labels=LABELS)
    return dev


def test_the_first_differing_operator_is_named(host_board) -> None:
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(4, 128, 3), dtype=np.int8)
    device_like = np.stack([np.frombuffer(_expected_output(s.tobytes()), dtype=np.int8)
                            for s in x])
    host = device_like.copy()
    host[2, 1] += 2  # the host disagrees on sample 2

    def layers(sample: np.ndarray) -> list[LayerOutput]:
        out = _double_layers(sample)
        out[0].raw = out[0].raw.copy()
        out[0].raw[:10] -= 3  # ... because operator 0 differs in 10 of its 384 elements
        return out

    with _board_with_model(host_board) as dev:
        result = validate(dev, x, host, layers=layers)
        assert (result.mismatches, result.mismatch_indices) == (1, [2])
        d = result.divergence
        assert d is not None and d["supported"] is True
        assert (d["op"], d["op_type"], d["name"], d["sample"]) == (0, "ABS", "abs", 2)
        assert (d["elements"], d["differing"], d["max_abs_diff"]) == (384, 10, 3.0)
        assert abs(d["share"] - 10 / 384) < 1e-12
        assert d["max_abs_diff_dequant"] == 3.0 * 0.0078125
        assert "first diverging operator #0 ABS (abs)" in result.verify_text

        # the operators agree: the report says so rather than blaming one
        agreeing = validate(dev, x, host, layers=_double_layers).divergence
        assert agreeing is not None and agreeing["op"] is None

        # the outputs agree: no per-layer run at all
        assert validate(dev, x, device_like, layers=layers).divergence is None


def test_tflm_layers_ends_with_the_models_output() -> None:
    """The per-operator host reference reads the right tensors: its last operator's output
    is the model's output as the host TFLM run (model_tools) computes it."""
    from model_tools.tflm import run_model

    model = (ROOT / "resources" / "examples" / "vibration" / "model_int8.tflite").read_bytes()
    x = np.random.default_rng(5).integers(-128, 128, size=(3, 128, 3), dtype=np.int8)
    expected = run_model(model, x)[0]
    layers = tflm_layers(model)
    for sample, want in zip(x, expected, strict=True):
        got = layers(sample)
        assert [g.op for g in got][-2:] == ["FULLY_CONNECTED", "SOFTMAX"]
        assert np.array_equal(got[-1].raw, want.reshape(-1))
        assert got[1].raw.size == 512 and got[0].op == "EXPAND_DIMS"


def test_a_runtime_without_preserved_tensors_is_reported_as_such() -> None:
    """The virtual board ignores ``preserve`` (an older runtime): validate says the per-layer
    report is not available instead of failing or blaming an operator."""
    from device_drivers.virtual import VirtualBoard
    from model_tools.tflm import run_model

    x = np.random.default_rng(7).integers(-128, 128, size=(3, 128, 3), dtype=np.int8)
    host = run_model(MODEL, x)[0].reshape(3, -1).copy()
    host[1, 0] ^= 1  # one LSB off on sample 1
    with VirtualBoard(board="virtual") as vb, DeviceSession.open(vb.port) as dev:
        result = validate(dev, x, host, layers=tflm_layers(MODEL))
    assert result.mismatch_indices == [1]
    assert result.divergence is not None and result.divergence["supported"] is False
    assert result.divergence["op"] is None and "no per-layer" in result.divergence["note"]
