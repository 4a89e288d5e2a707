"""``tinyops firmware build``: one command, cached by its inputs, only the declared kernels."""

from __future__ import annotations

import json

import pytest

from app.cli import main
from device_drivers.errors import InputError
from device_drivers.firmware import build as fwbuild
from device_drivers.firmware.sources import load_manifest


def test_second_build_is_cached_and_reports_sizes_and_commits(fw_build, capsys):
    first = fw_build("cortex-m4", "cmsis-nn")
    assert main(["firmware", "build", "--cpu", "cortex-m4", "--kernels", "cmsis-nn",
                 "--app", "selftest", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] and out["cached"] is True and out["compiled"] == 0
    assert out["elf"] == first.elf and out["machine"] == "mps2-an386"
    assert out["sizes"]["text"] > 40_000 and out["sizes"]["bss"] > 0
    assert out["dependencies"] == {d.name: d.commit for d in load_manifest()}
    assert out["seconds"] < 30  # hashing the inputs, no compiler run


def test_only_the_declared_kernels_are_compiled(fw_build):
    result = fw_build("cortex-m3", "reference")
    kernels = set()
    for _name, _method, stems in fwbuild.op_set():
        kernels.update(stems)
    src = {p.name for p in fwbuild.cache_root().glob("src/tflite-micro-*")}
    assert src
    units, _ = fwbuild._plan("cortex-m3", "reference", "selftest",
                             fwbuild.fetch_sources(load_manifest()))
    compiled = {u.source.stem for u in units if u.source.parent.name == "kernels"}
    assert compiled == kernels | {"kernel_util", "micro_tensor_utils"}
    assert not any(u.source.parent.name == "cmsis_nn" for u in units)
    assert result.objects == len(units)


def test_cmsis_nn_build_uses_arm_kernels_where_they_exist(fw_build):
    units, _ = fwbuild._plan("cortex-m4", "cmsis-nn", "selftest",
                             fwbuild.fetch_sources(load_manifest()))
    optimized = {u.source.stem for u in units if u.source.parent.name == "cmsis_nn"}
    assert {"conv", "depthwise_conv", "fully_connected", "softmax"} <= optimized
    assert any("-DCMSIS_NN" in u.flags for u in units)
    assert any(u.source.suffix == ".c" and "CMSIS" not in str(u.source) and
               "cmsis-nn" in str(u.source) for u in units)


def test_missing_toolchain_is_one_line_saying_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InputError) as err:
        fwbuild.build("cortex-m4", "cmsis-nn", "selftest")
    assert "arm-none-eabi-gcc" in str(err.value) and "gcc-arm-none-eabi" in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_or_unbuilt_cpu_is_refused(capsys):
    assert main(["firmware", "build", "--cpu", "cortex-m55", "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert not out["ok"] and "cortex-m55" in out["error"]
