"""The TinyOps firmware (core + TFLM glue + QEMU port) as a board: the CLI works unchanged.

One QEMU mps2-an386 (Cortex-M4F, CMSIS-NN kernels) per module, storage in a temp folder:
`info`, `flash` of the bundled example (device-verified sha256, the model loads), a bad model
refused with the previous one running before and after a reset, random bytes on the UART and
echo still answered, `monitor` lines with scores computed by Arm code, `validate` bit-exact
or the diverging operator named, and `analyze --target` equal to the device's arena figure.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
from urllib.parse import urlparse

import pytest
from _host import EXAMPLE

from app.cli import main
from device_drivers.firmware import qemu
from device_drivers.firmware.probe import run_selftest
from device_drivers.link import DeviceSession

MODEL = EXAMPLE.read_bytes()
SHA = hashlib.sha256(MODEL).hexdigest()
EVAL = EXAMPLE.parent / "eval.npz"


@pytest.fixture(scope="module")
def board(fw_build, tmp_path_factory):
    built = fw_build("cortex-m4", "cmsis-nn", "runtime")
    with qemu.start(built.elf, "mps2-an386", tmp_path_factory.mktemp("fw-state")) as b:
        yield b


def _cli(capsys, *argv: str) -> tuple[int, dict]:
    code = main([*argv, "--json"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("{")]
    return code, json.loads(lines[-1])


def test_info_reports_the_runtime_groups_and_arena(board, capsys):
    code, out = _cli(capsys, "info", "--port", board.port, "--timeout", "5")
    assert code == 0, out
    assert out["runtime"].startswith("tinyops-fw ") and "cmsis-nn" in out["runtime"]
    assert out["board"] == "qemu-mps2-an386"
    assert out["arena_size"] == 2 * 1024 * 1024
    assert {"os", "fs", "enum", "tinyops"} <= set(out["groups"])


def test_flash_the_example_device_verified_and_loaded(board, capsys):
    code, out = _cli(capsys, "flash", str(EXAMPLE), "--port", board.port)
    assert code == 0, out
    with DeviceSession.open(board.port, timeout_s=5.0) as dev:
        info = dev.model_info()
    assert info.loaded and info.sha256.hex() == SHA and info.size == len(MODEL)
    assert "CONV_2D" in info.ops and info.arena_used > 0


def test_device_arena_equals_analyze_target_to_the_byte(board, fw_build, capsys):
    with DeviceSession.open(board.port, timeout_s=5.0) as dev:
        device = dev.model_info().arena_used
    _code, out = _cli(capsys, "analyze", str(EXAMPLE), "--target", "cortex-m4",
                     "--kernels", "cmsis-nn")
    assert out["target"]["arena_used"] == device
    built = fw_build("cortex-m4", "cmsis-nn", "selftest")
    assert run_selftest(built.elf, "mps2-an386", MODEL)[0]["arena_used"] == device


def test_bad_model_refused_previous_keeps_running_across_reset(board, capsys):
    bad = bytearray(MODEL)
    bad[len(bad) // 2: len(bad) // 2 + 64] = os.urandom(64)
    path = board.state / "bad.tflite"
    path.write_bytes(bytes(bad))
    code, _out = _cli(capsys, "flash", str(path), "--port", board.port)
    assert code != 0
    with DeviceSession.open(board.port, timeout_s=5.0) as dev:
        info = dev.model_info()
        assert info.loaded and info.sha256.hex() == SHA
        dev.reset()
    with DeviceSession.open(board.port, timeout_s=10.0) as dev:
        info = dev.model_info()
        assert info.loaded and info.sha256.hex() == SHA


def test_random_bytes_then_echo_still_answered(board):
    url = urlparse(board.port)
    with socket.create_connection((url.hostname, url.port), timeout=5) as s:
        for _ in range(20):
            s.sendall(os.urandom(512))
        s.sendall(b"\x06\x09" + os.urandom(300) + b"\n" + b"x" * 2000 + b"\n")
    with DeviceSession.open(board.port, timeout_s=5.0) as dev:
        assert dev.echo("still here") == "still here"


def _ensure_example(board, capsys) -> None:
    with DeviceSession.open(board.port, timeout_s=5.0) as dev:
        info = dev.model_info()
    if not (info.loaded and info.sha256.hex() == SHA):
        assert _cli(capsys, "flash", str(EXAMPLE), "--port", board.port)[0] == 0


def test_monitor_gets_scores_computed_on_the_board(board, capsys):
    _ensure_example(board, capsys)
    code, out = _cli(capsys, "monitor", "--port", board.port, "--duration", "4",
                     "--start-stream")
    assert code == 0, out
    assert out["format"] == "json" and out["parsed"] > 0
    assert "latency_us" in out["channels"]
    scores = [c.split("/", 1)[1] for c in out["channels"] if c.startswith("score/")]
    assert len(scores) == 3 and out["top_label"] in scores, json.dumps(out)  # the softmax
    assert 0.9 < sum(out["channels"][f"score/{c}"]["last"] for c in scores) < 1.1


def test_validate_is_bit_exact_or_names_the_operator(board, capsys):
    _ensure_example(board, capsys)
    code, out = _cli(capsys, "validate", str(EXAMPLE), "--port", board.port, "--data",
                     str(EVAL), "--limit", "16")
    assert out["samples"] == 16
    if out["bit_exact"]:  # what the self-test found for this model on M4 + CMSIS-NN
        assert code == 0 and out["mismatches"] == 0
    else:
        d = out["divergence"]
        assert d and d["op"] is not None and 0 < d["share"] <= 1, out
