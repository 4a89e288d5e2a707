"""Every model feature works through another route, or says why not, where tflite-micro
(or TensorFlow) is missing.

The module runs in the normal suite (tflite-micro present on Linux x86-64) and again in CI
with ``TINYOPS_BLOCK_TFLM=1 uv run pytest -m no_tflm`` (tflite-micro unimportable, in this
process and in every child): each test checks what that system must do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from model_tools.availability import UNAVAILABLE, model_features
from model_tools.evaluate import run_as_device
from model_tools.host_interpreter import make_interpreter
from model_tools.tflm import TFLM_MISSING, tflm_available
from model_tools.verify import verify_tflite

pytestmark = pytest.mark.no_tflm
BLOCKED = os.environ.get("TINYOPS_BLOCK_TFLM") == "1"
WITHOUT = BLOCKED or not tflm_available()  # blocked here, or a system without its wheel
ROOT = Path(__file__).resolve().parents[2]


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1, out
    return json.loads(out[0])


def test_the_switch_really_blocks_tflite_micro() -> None:
    if BLOCKED:
        assert not tflm_available()
        with pytest.raises(ImportError):
            import tflite_micro  # noqa: F401
        child = subprocess.run([sys.executable, "-c", "import tflite_micro"],
                               capture_output=True, text=True, check=False)
        assert child.returncode != 0 and "blocked" in child.stderr


def test_litert_matches_tensorflow_bit_for_bit(example_tflite: bytes, example_dir: Path,
                                               tf) -> None:
    """LiteRT is the host interpreter: same outputs as TensorFlow's own, on the example."""
    x = np.load(example_dir / "eval.npz")["x"][:16]
    model = verify_tflite(example_tflite)
    interp, engine = make_interpreter(example_tflite)
    assert engine == "litert"
    reference = tf.lite.Interpreter(model_content=example_tflite)
    outs = []
    for it in (interp, reference):
        it.allocate_tensors()
        i, o = it.get_input_details()[0], it.get_output_details()[0]
        scale, zero = i["quantization"]
        got = []
        for sample in x:
            q = np.clip(np.round(sample / scale) + zero, -128, 127).astype(np.int8)
            it.set_tensor(i["index"], q[None])
            it.invoke()
            got.append(it.get_tensor(o["index"]).copy())
        outs.append(np.stack(got))
    assert model.main.inputs and outs[0].dtype == np.int8
    assert np.array_equal(outs[0], outs[1])


def test_device_evaluation_runs_without_tflm(example_tflite: bytes, example_dir: Path) -> None:
    data = np.load(example_dir / "eval.npz")
    x, y = data["x"][:40], data["y"][:40]
    run = run_as_device(verify_tflite(example_tflite), x)
    if WITHOUT:
        assert run.engine == "litert" and run.tflm_error == TFLM_MISSING and run.arena is None
    else:
        assert run.engine == "tflite-micro" and run.arena
    assert np.mean(run.outputs.argmax(axis=1) == y) > 0.8  # the example classifies well


def test_analyze_json_labels_what_is_missing(example_dir: Path, capsys) -> None:
    assert main(["analyze", str(example_dir / "model_int8.tflite"), "--json"]) == 0
    data = _json(capsys)
    missing = data["unavailable"]
    if WITHOUT:
        assert data["arena_method"] == "estimate" and data["arena_bytes"] > 0
        assert data["tflm_compatible"] is None
        assert set(missing) == {"tflm_verdict", "arena_exact"}
        assert missing["arena_exact"].startswith(f"{UNAVAILABLE}: tflite-micro is not installed")
        assert "emulated Cortex-M firmware" in missing["arena_exact"]
    else:
        assert data["arena_method"] == "measured" and missing == {}


def test_features_and_doctor_report_every_feature(capsys) -> None:
    assert main(["features", "--json"]) == 0
    feats = {f["key"]: f for f in _json(capsys)["features"]}
    assert set(feats) == {f.key for f in model_features()} | {"virtual_board"}
    for f in feats.values():  # each one: a route, or "not available on this system: why"
        assert (f["available"] and f["route"]) or f["label"].startswith(UNAVAILABLE + ": ")
    assert feats["evaluate"]["available"] and feats["layer_error"]["available"]
    assert feats["virtual_board"]["route"].startswith("litert" if WITHOUT else "tflite-micro")
    assert feats["arena_exact"]["available"] is not WITHOUT
    main(["doctor", "--json"])
    checks = {c["id"]: c for c in _json(capsys)["checks"]}
    assert checks["feature-arena_exact"]["status"] == ("warn" if WITHOUT else "ok")
    assert checks["feature-virtual_board"]["status"] == "ok"


def _cli_without_tensorflow(args: list[str], **env: str) -> subprocess.CompletedProcess:
    blocker = ROOT / "tests" / "no_tflm"
    full = {**os.environ, "PYTHONPATH": str(blocker), "TINYOPS_BLOCKED_MODULES":
            "tensorflow,keras,tflite_micro" if BLOCKED else "tensorflow,keras", **env}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, env=full, timeout=600, check=False)


def test_without_tensorflow_tflite_works_and_conversion_says_how(example_dir: Path,
                                                                 tmp_path: Path) -> None:
    """The installed app has no TensorFlow: .tflite analysis works, a Keras model gets one
    clear line (no traceback) naming the conversion add-on."""
    tfl = _cli_without_tensorflow(["analyze", str(example_dir / "model_int8.tflite"), "--json"],
                                  TINYOPS_CONVERT_PYTHON=str(tmp_path / "none"))
    assert tfl.returncode == 0, tfl.stderr
    conv = json.loads(tfl.stdout)["unavailable"]["convert"]
    assert conv.startswith(f"{UNAVAILABLE}: TensorFlow is not installed")
    keras = _cli_without_tensorflow(
        ["quantize", str(example_dir / "model.keras"), "--calib", str(example_dir / "calib.npz"),
         "-o", str(tmp_path / "q.tflite"), "--json"], TINYOPS_CONVERT_PYTHON=str(tmp_path / "x"))
    assert keras.returncode == 1 and "Traceback" not in keras.stderr
    reply = json.loads(keras.stdout)
    assert reply["ok"] is False and UNAVAILABLE in reply["error"]
    assert "conversion add-on" in reply["hint"] and not (tmp_path / "q.tflite").exists()


def test_the_conversion_add_on_is_found_and_used(example_dir: Path, tmp_path: Path) -> None:
    """With ``TINYOPS_CONVERT_PYTHON`` (a Python with TensorFlow: here the project's), the
    TensorFlow-free CLI runs the conversion there."""
    if BLOCKED:  # TensorFlow's side, independent of tflite-micro; keeps the CI run short
        pytest.skip("covered by the normal run (conversion does not involve tflite-micro)")
    out = tmp_path / "q.tflite"
    run = _cli_without_tensorflow(
        ["quantize", str(example_dir / "model.keras"), "--calib", str(example_dir / "calib.npz"),
         "-o", str(out), "--no-arena", "--json"], TINYOPS_CONVERT_PYTHON=sys.executable)
    assert run.returncode == 0, run.stderr
    reply = json.loads(run.stdout.strip().splitlines()[-1])
    assert reply["ok"] and out.is_file() and reply["input"]["dtype"] == "int8"


def test_the_model_page_says_what_is_missing(example_dir: Path) -> None:
    """The GUI's Model page rows (Qt-free helper) carry the same labels."""
    from app.gui.pages.model_results import analysis_rows
    from model_tools.analyze import analyze

    rows = dict(analysis_rows(analyze(example_dir / "model_int8.tflite", measure=False)))
    if WITHOUT:
        assert rows["Runs in TFLM"].startswith(f"{UNAVAILABLE}: tflite-micro is not installed")
        assert rows["Exact arena"].startswith(UNAVAILABLE) and "estimate" in rows["Tensor arena"]
    else:
        assert rows["Runs in TFLM"] == "yes" and "Exact arena" not in rows
