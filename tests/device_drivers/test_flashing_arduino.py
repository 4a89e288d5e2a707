"""arduino back end: a clear error without arduino-cli; with one, the compile and upload
command lines and the runtime verification. ``arduino-cli`` is replaced by a recording
script (the external tool's boundary); the verification talks to a real virtual board."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from device_drivers import paths
from device_drivers.errors import DeviceError, InputError
from device_drivers.flashing import Artifact, FlashOptions, flash
from device_drivers.virtual import VirtualBoard
from fleet_ops.records.device_ops import record_flash

BASE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()

FAKE_CLI = """#!/bin/sh
echo "$@" >> "{log}"
if [ "$1" = "compile" ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = "--build-path" ]; then head -c 4096 /dev/zero > "$2/sketch.ino.bin"; fi
    shift
  done
fi
exit {code}
"""


def _fake_cli(tmp_path: Path, code: int = 0) -> tuple[Path, Path]:
    log = tmp_path / "calls.log"
    script = tmp_path / "arduino-cli"
    script.write_text(FAKE_CLI.format(log=log, code=code))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script, log


def _library(tmp_path: Path) -> Path:
    lib = tmp_path / "Model"
    (lib / "src").mkdir(parents=True)
    (lib / "src" / "model.h").write_text("// model\n")
    (lib / "library.properties").write_text("name=Model\n")
    (lib / "examples" / "ModelInfo").mkdir(parents=True)
    (lib / "examples" / "ModelInfo" / "ModelInfo.ino").write_text("void setup(){}\n")
    return lib


def test_missing_arduino_cli_says_how_to_install(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TINYOPS_ARDUINO_CLI", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    art = Artifact.load(_library(tmp_path), model_sha256="00" * 32)
    with pytest.raises(DeviceError, match="arduino-cli is not installed") as info:
        flash(art, "/dev/ttyACM0", options=FlashOptions(board="nano33ble"), recorder=record_flash)
    assert "install" in (info.value.hint or "")


def test_compile_upload_and_verify_on_the_runtime(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    script, log = _fake_cli(tmp_path)
    monkeypatch.setenv("TINYOPS_ARDUINO_CLI", str(script))
    lib = _library(tmp_path)
    digest = hashlib.sha256(BASE).hexdigest()  # the model the (virtual) board runs
    with VirtualBoard(board="virtual") as vb:
        result = flash(Artifact.load(lib, model_sha256=digest), vb.port,
                       options=FlashOptions(board="nano33ble"), recorder=record_flash)
    assert result.ok and result.backend == "arduino" and result.device_digest == digest
    assert result.bytes == 4096  # the compiled binary
    compile_call, upload_call = log.read_text().splitlines()
    assert compile_call.startswith("compile --fqbn arduino:mbed_nano:nano33ble --build-path ")
    assert f"--library {lib}" in compile_call
    assert compile_call.endswith(str(lib / "examples" / "ModelInfo"))
    assert upload_call.startswith(f"upload --fqbn arduino:mbed_nano:nano33ble -p {vb.port}")


def test_board_not_running_the_new_model_fails(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    script, _ = _fake_cli(tmp_path)
    monkeypatch.setenv("TINYOPS_ARDUINO_CLI", str(script))
    with VirtualBoard(board="virtual") as vb, pytest.raises(DeviceError, match="new model"):
        flash(Artifact.load(_library(tmp_path), model_sha256="ab" * 32), vb.port,
              options=FlashOptions(board="nano33ble", reboot_timeout_s=1.0), recorder=record_flash)


def test_failed_compile_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, _ = _fake_cli(tmp_path, code=1)
    monkeypatch.setenv("TINYOPS_ARDUINO_CLI", str(script))
    with pytest.raises(DeviceError, match="compile failed"):
        flash(Artifact.load(_library(tmp_path), model_sha256="00" * 32), "/dev/null",
              options=FlashOptions(board="nano33ble"), recorder=record_flash)


def test_board_without_fqbn_is_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script, _ = _fake_cli(tmp_path)
    monkeypatch.setenv("TINYOPS_ARDUINO_CLI", str(script))
    with pytest.raises(InputError, match="FQBN"):
        flash(Artifact.load(_library(tmp_path), model_sha256="00" * 32), "/dev/null",
              options=FlashOptions(board="virtual"), backend="arduino", recorder=record_flash)
    assert os.environ["TINYOPS_ARDUINO_CLI"] == str(script)
