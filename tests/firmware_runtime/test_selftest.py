"""The QEMU port and the TFLM glue, before the core: the self-test firmware in QEMU.

The bundled example model runs on the Cortex-M4 (CMSIS-NN) and Cortex-M3 (reference) builds
and its outputs are compared byte for byte with the host's tflite-micro wheel; a corrupted
model is refused with the previous one still answering; preserve_all_tensors keeps every
operator's output; storage written through semihosting reads back.
"""

from __future__ import annotations

import json

import pytest
from _host import EXAMPLE, example_samples, host_outputs, quantized_inputs

from app.cli import main
from device_drivers.firmware.build import op_set
from device_drivers.firmware.probe import run_selftest

BUILDS = [("cortex-m4", "cmsis-nn", "mps2-an386"), ("cortex-m3", "reference", "mps2-an385")]
SAMPLES = 24


@pytest.fixture(scope="module")
def example():
    model = EXAMPLE.read_bytes()
    data, arrays = quantized_inputs(model, example_samples(SAMPLES))
    return model, data, host_outputs(model, arrays)


@pytest.mark.parametrize(("cpu", "kernels", "machine"), BUILDS)
def test_example_model_runs_bit_exact_against_host_tflm(fw_build, example, cpu, kernels,
                                                        machine):
    model, inputs, expected = example
    built = fw_build(cpu, kernels)
    lines = run_selftest(built.elf, machine, model, inputs)
    head = lines[0]
    assert head["load"] == 0, head["log"]
    assert head["board"] == f"qemu-{machine}"
    assert head["ops"] == [name for name, _, _ in op_set()]
    assert kernels in head["version"] and built.dependencies["tflite-micro"][:8] in head["version"]
    assert 0 < head["arena_used"] < head["arena_size"]
    results = [ln for ln in lines if "i" in ln]
    assert len(results) == SAMPLES
    got = [bytes.fromhex(r["out"]) for r in results]
    assert all(r["rc"] == 0 for r in results)
    assert got == expected
    bad = next(ln for ln in lines if "bad_load" in ln)
    assert bad == {"bad_load": 2, "still_same": True}
    preserve = next(ln for ln in lines if "preserve_ops" in ln)
    assert preserve == {"preserve_ops": 16, "last_op_equals_output": True}
    storage = next(ln for ln in lines if "storage" in ln)
    assert storage == {"storage": 0, "reread_equal": True}
    assert head["exit_code"] == 0


def test_garbage_model_is_refused_as_bad_model(fw_build):
    built = fw_build("cortex-m4", "cmsis-nn")
    head = run_selftest(built.elf, "mps2-an386", bytes(range(256)) * 40)[0]
    assert head["load"] == 2 and head["arena_used"] == 0


def test_analyze_target_reports_the_firmware_arena(fw_build, capsys):
    built = fw_build("cortex-m4", "cmsis-nn")
    head = run_selftest(built.elf, "mps2-an386", EXAMPLE.read_bytes())[0]
    assert main(["analyze", str(EXAMPLE), "--target", "cortex-m4", "--kernels", "cmsis-nn",
                 "--board", "nano33ble", "--json"]) in (0, 1)
    out = json.loads(capsys.readouterr().out)
    target = out["target"]
    assert target["arena_used"] == head["arena_used"]
    assert target["host_arena_bytes"] == out["arena_bytes"]
    assert out["fit"]["arena_source"].startswith("target")
