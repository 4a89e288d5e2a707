"""``tinyops analyze / quantize / export``: JSON output, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli import main
from tinyops_base.uf2 import decode_uf2


def _json(capsys) -> dict:
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_analyze_json(example_dir: Path, capsys) -> None:
    assert main(["analyze", str(example_dir / "model_int8.tflite"), "--json"]) == 0
    data = _json(capsys)
    assert data["ok"] and data["flash_bytes"] == (example_dir / "model_int8.tflite").stat().st_size
    assert data["arena_bytes"] > 0 and data["ops"]


def test_analyze_with_registry_board(example_dir: Path, capsys) -> None:
    from device_drivers.boards import get_board

    board = get_board("nano33ble")
    assert main(["analyze", str(example_dir / "model_int8.tflite"), "--board", "nano33ble",
                 "--no-measure", "--json"]) == 0
    fit = _json(capsys)["fit"]
    assert fit["verdict"] == "fits"
    assert fit["ram"]["available"] == board.ram - board.runtime_reserve.ram


@pytest.mark.parametrize("argv", [
    ["analyze", "{bad}"],
    ["analyze", "{model}", "--board", "no-such-board"],
    ["export", "{bad}", "--format", "c", "-o", "{tmp}"],
    ["export", "{model}", "--format", "uf2", "-o", "{tmp}/x.uf2"],
    ["quantize", "{model}", "--calib", "{calib}"],
])
def test_bad_input_exits_2_with_one_line(example_dir: Path, tmp_path: Path, capsys, argv) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes((example_dir / "model_int8.tflite").read_bytes()[:3000])
    subs = {"bad": str(bad), "model": str(example_dir / "model_int8.tflite"),
            "tmp": str(tmp_path), "calib": str(example_dir / "calib.npz")}
    assert main([a.format(**subs) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert len(err.strip().splitlines()) <= 2  # the cause, and the fix


def test_corrupt_model_in_a_real_process(example_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "flipped.tflite"
    data = bytearray((example_dir / "model_int8.tflite").read_bytes())
    data[60] ^= 0xFF
    bad.write_bytes(bytes(data))
    run = subprocess.run([sys.executable, "-m", "app.cli", "analyze", str(bad), "--json"],
                         capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2], check=False)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert json.loads(run.stdout)["ok"] is False


def test_export_uf2_for_a_registry_board(example_dir: Path, tmp_path: Path, capsys) -> None:
    from device_drivers.boards import load_registry

    board = next(b for b in load_registry() if b.backend == "uf2" and b.model_region)
    out = tmp_path / "m.uf2"
    assert main(["export", str(example_dir / "model_int8.tflite"), "--format", "uf2",
                 "--board", board.id, "-o", str(out), "--json"]) == 0
    assert _json(capsys)["ok"]
    back = decode_uf2(out.read_bytes())
    assert back.start == board.model_region.address and back.family_id == board.uf2_family
    data = (example_dir / "model_int8.tflite").read_bytes()
    assert back.data[:len(data)] == data


def test_quantize_json(tiny_keras, tmp_path: Path, capsys) -> None:
    _, folder = tiny_keras
    out = tmp_path / "q.tflite"
    assert main(["quantize", str(folder / "tiny.keras"), "--calib", str(folder / "calib.npz"),
                 "-o", str(out), "--no-arena", "--json"]) == 0
    data = _json(capsys)
    assert data["ok"] and data["output"] == str(out) and out.is_file()
    assert Path(data["card"]).is_file() and data["mode"] == "int8"
