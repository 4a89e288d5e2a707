"""Per-layer report (issue 14 item 4): exact MACs/params on a hand-computable conv + dense model,
and the int8-vs-float SQNR points at a deliberately damaged layer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from model_tools.layers import layer_table, layers_report, sqnr_db
from model_tools.verify import verify_tflite

pytestmark = pytest.mark.no_tflm  # also run with tflite-micro blocked (CI)


@pytest.fixture(scope="module")
def tiny(tf, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8x8x1 -> Conv2D(4, 3x3, valid, relu) -> Flatten -> Dense(3), float and int8."""
    import keras

    from model_tools.quantize import quantize

    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, activation="relu", bias_initializer="random_normal")(inp)
    out = keras.layers.Dense(3, bias_initializer="random_normal")(keras.layers.Flatten()(h))
    folder = tmp_path_factory.mktemp("layers")
    keras.Model(inp, out).save(folder / "tiny.keras")
    rng = np.random.default_rng(0)
    np.savez(folder / "calib.npz", x=rng.uniform(-1, 1, (16, 8, 8, 1)).astype(np.float32))
    quantize(folder / "tiny.keras", folder / "calib.npz", output=folder / "tiny_int8.tflite",
             measure_arena=False)
    return folder


def test_macs_and_params_are_exact(tiny: Path) -> None:
    rows = layers_report(tiny / "tiny.keras")["layers"]
    conv = next(r for r in rows if r["op"] == "CONV_2D")
    dense = next(r for r in rows if r["op"] == "FULLY_CONNECTED")
    # conv: 6x6x4 outputs x 3x3x1 taps; 4 kernels of 3x3x1 + 4 biases
    assert (conv["macs"], conv["params"]) == (6 * 6 * 4 * 9, 4 * 9 + 4)
    assert conv["activation_bytes"] == 6 * 6 * 4 * 4 and conv["output_shape"] == [1, 6, 6, 4]
    # dense: 144 inputs x 3 outputs; 144x3 weights + 3 biases
    assert (dense["macs"], dense["params"]) == (144 * 3, 144 * 3 + 3)
    assert sum(r["params"] for r in rows) == 40 + 435  # the reshape's shape is not a parameter


def test_int8_table_counts_int8_activation_bytes(tiny: Path) -> None:
    rows = layer_table(verify_tflite((tiny / "tiny_int8.tflite").read_bytes()))
    conv = next(r for r in rows if r["op"] == "CONV_2D")
    assert conv["dtype"] == "int8" and conv["activation_bytes"] == 6 * 6 * 4


def _damage_dense(data: bytes) -> bytes:
    """Negate the int8 weights of the FULLY_CONNECTED op."""
    import flatbuffers

    from model_tools.fb_schema import generated_module

    sg = verify_tflite(data).main
    fc = next(op for op in sg.operators if op.op == "FULLY_CONNECTED")
    buf = sg.tensors[fc.inputs[1]].buffer
    gen = generated_module()
    model = gen.ModelT.InitFromObj(gen.Model.GetRootAs(data, 0))
    w = np.asarray(model.buffers[buf].data, dtype=np.uint8).view(np.int8)
    model.buffers[buf].data = np.clip(-w.astype(np.int16), -127, 127).astype(np.int8).view(
        np.uint8)
    b = flatbuffers.Builder(len(data) + 1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_sqnr_is_high_for_a_good_int8_model_and_finds_the_damaged_layer(tiny: Path,
                                                                        capsys) -> None:
    good = layers_report(tiny / "tiny.keras", quantized=tiny / "tiny_int8.tflite",
                         calib=tiny / "calib.npz")
    by_op = {r["op"]: r for r in good["layers"] if r.get("sqnr_db") is not None}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= set(by_op)
    assert by_op["CONV_2D"]["sqnr_db"] > 25 and by_op["FULLY_CONNECTED"]["sqnr_db"] > 20

    damaged = tiny / "damaged.tflite"
    damaged.write_bytes(_damage_dense((tiny / "tiny_int8.tflite").read_bytes()))
    from app.cli import main

    assert main(["analyze", str(tiny / "tiny.keras"), "--layers", "--json", "--no-measure",
                 "--compare", str(damaged), "--calib", str(tiny / "calib.npz")]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["layer_report"]
    bad = {r["op"]: r for r in report["layers"] if r.get("sqnr_db") is not None}
    assert report["worst"]["op"] == "FULLY_CONNECTED"
    assert bad["CONV_2D"]["sqnr_db"] == by_op["CONV_2D"]["sqnr_db"]  # upstream untouched
    assert bad["FULLY_CONNECTED"]["sqnr_db"] < 0 < bad["FULLY_CONNECTED"]["sqnr_drop_db"] - 25


def test_sqnr_definition() -> None:
    ref = np.array([3.0, 4.0])
    assert sqnr_db(ref, ref) == float("inf")
    assert sqnr_db(ref, ref * 0.9) == pytest.approx(20.0)


def test_layers_job_runs_in_the_model_worker_and_the_view_merges_its_errors(
        example_dir: Path) -> None:
    from app.gui.pages.layers_view import display_rows
    from app.model_worker import LAYERS_JOB, ModelWorker

    worker = ModelWorker(idle_s=0)
    try:
        report = worker.call(LAYERS_JOB, str(example_dir / "model_int8.tflite"))
        assert worker.pid is not None  # it ran in the child, not here
    finally:
        worker.stop()
    layers = report["layers"]
    first = layers[0]
    errors = {first["index"]: {"op": first["op"], "sqnr_db": 31.25, "sqnr_drop_db": 2.0}}
    rows = display_rows(layers, errors)
    assert (rows[0]["sqnr_db"], rows[0]["sqnr_drop_db"]) == ("31.2", "2.0")
    assert all(r["sqnr_db"] == "" for r in rows[1:])
    other = {first["index"]: {"op": "NOT_" + first["op"], "sqnr_db": 1.0}}
    assert display_rows(layers, other)[0]["sqnr_db"] == ""  # another model's errors: dropped
