"""The firmware's synthetic vibration is classified by the bundled example model (run here by
the host's TFLM), and every core source compiles for a Cortex-M3 with -Werror."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "resources" / "examples" / "vibration"


def test_the_example_model_classifies_the_firmwares_signal(signal_tool: Path) -> None:
    from model_tools.tflm import run_model
    from model_tools.verify import verify_tflite

    out = subprocess.run([str(signal_tool), "40"], capture_output=True, text=True,
                         timeout=60, check=True).stdout.splitlines()
    rows = np.array([[float(v) for v in line.split()] for line in out])
    states, x = rows[:, 0].astype(int), rows[:, 1:].reshape(-1, 128, 3)
    model = (EXAMPLE / "model_int8.tflite").read_bytes()
    main = verify_tflite(model).main
    spec = main.tensors[main.inputs[0]]
    scale, zero = spec.scales[0], spec.zero_points[0]  # quantized as telemetry.c does
    raw = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    top = run_model(model, raw)[0].reshape(len(raw), -1).argmax(axis=1)
    for state in range(3):
        accuracy = float(np.mean(top[states == state] == state))
        assert accuracy >= 0.9, (state, accuracy)


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None,
                    reason="arm-none-eabi-gcc is not installed (apt-get install gcc-arm-none-eabi)")
def test_the_core_compiles_for_cortex_m3(tmp_path: Path) -> None:
    for source in sorted((ROOT / "firmware" / "core").glob("*.c")):
        done = subprocess.run(
            ["arm-none-eabi-gcc", "-std=c11", "-Os", "-Wall", "-Wextra", "-Werror",
             "-mcpu=cortex-m3", "-mthumb", "-I", str(ROOT / "firmware" / "include"),
             "-c", str(source), "-o", str(tmp_path / (source.stem + ".o"))],
            capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
