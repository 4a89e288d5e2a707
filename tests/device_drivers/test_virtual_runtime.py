"""The TinyOps runtime group (64) of the virtual board with real models, over a real pty."""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import pytest
from smp import error as smperr
from test_virtual_support import Client, example_model, sha, sine_model, wait_for

from device_drivers.protocol import runtime as rt
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.limits import BoardLimits, KiB
from device_drivers.virtual.signal import STATES, VibrationSource

pytestmark = pytest.mark.no_tflm  # also run with tflite-micro blocked (CI)

ERR = rt.RUNTIME_ERR


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    with VirtualBoard(board="nano33ble") as vb:
        yield vb


@pytest.fixture(scope="module")
def client(board: VirtualBoard):
    with Client(board.port) as c:
        yield c


@pytest.fixture
def example(board: VirtualBoard, client: Client) -> bytes:
    """Make sure the bundled example model runs (a previous test may have swapped it)."""
    data = example_model()
    if board.loaded_model_sha256 != sha(data).hex():
        client.upload_file(data, "/lfs/model.tflite")
        reply = client.request(rt.LoadModel(path="/lfs/model.tflite", labels=list(STATES)))
        assert reply.sha256 == sha(data)
    return data


def quantize(x: np.ndarray, spec: rt.TensorSpec) -> bytes:
    q = np.round(x / spec.scale) + spec.zero_point
    return np.clip(q, -128, 127).astype(np.int8).tobytes()


def test_model_info_describes_the_bundled_model(board: VirtualBoard, client: Client,
                                                example: bytes) -> None:
    info = client.request(rt.ModelInfo())
    assert info.loaded and info.sha256 == sha(example) and info.size == len(example)
    assert info.runtime.startswith("tinyops-runtime") and info.board == "nano33ble"
    assert info.labels == list(STATES)
    assert info.arena_size == board.limits.arena_size == 192 * KiB
    assert 0 < info.arena_used < info.arena_size
    (inp,) = info.inputs
    assert inp.dtype == "int8" and inp.shape == [1, 128, 3] and inp.scale > 0
    assert info.outputs[0].shape == [1, len(STATES)]


def test_infer_runs_the_real_model(client: Client, example: bytes) -> None:
    info = client.request(rt.ModelInfo())
    source = VibrationSource(seed=123)
    hits = 0
    for state in range(len(STATES)):
        for _ in range(4):
            reply = client.request(rt.Infer(input=quantize(source.window(state), info.inputs[0])))
            out = np.frombuffer(reply.output, dtype=np.int8)
            assert out.shape == (len(STATES),) and reply.latency_us > 0
            hits += int(np.argmax(out) == state)
    assert hits >= 10  # the example classifies the generator's signal well (12 windows)


def test_infer_with_wrong_size_is_bad_input(client: Client, example: bytes) -> None:
    reply = client.request(rt.Infer(input=b"\x00" * 10))
    assert reply.err.group == rt.GROUP_ID and reply.err.rc == ERR.BAD_INPUT


def test_stats_count_inferences_and_time(client: Client, example: bytes) -> None:
    first = client.request(rt.Stats())
    client.request(rt.Infer(input=bytes(128 * 3)))
    time.sleep(0.05)
    second = client.request(rt.Stats())
    assert second.inferences >= first.inferences + 1
    assert second.uptime_ms > first.uptime_ms
    assert 0 < second.heap_free < second.heap_total and 0 <= second.cpu_load <= 1
    assert 20 < second.temp_c < 60 and 3000 < second.vcc_mv < 3600


def test_stream_lines_carry_scores_that_follow_the_machine_state(client: Client,
                                                                 example: bytes) -> None:
    reply = client.request(rt.Stream(on=True, period_ms=50))
    assert reply.on and reply.period_ms == 50
    lines = client.telemetry(1.5)
    assert len(lines) >= 15  # ~30 expected at 50 ms
    keys = {"t", "scores", "latency_us", "arena_used", "heap_free", "cpu_load", "temp_c",
            "vcc_mv", "state"}
    assert all(keys <= set(line) for line in lines)
    assert all(set(line["scores"]) == set(STATES) for line in lines)
    assert all(abs(sum(line["scores"].values()) - 1) < 0.02 for line in lines)
    ts = [line["t"] for line in lines]
    assert ts == sorted(ts)
    agree = sum(max(line["scores"], key=line["scores"].get) == line["state"] for line in lines)
    assert agree >= 0.8 * len(lines)
    client.request(rt.Stream(on=True, period_ms=100, fields=["scores"]))
    client.telemetry(0.15)  # drain lines that were already on the way
    only = client.telemetry(0.5)
    assert only and all("scores" in x and "heap_free" not in x for x in only)
    client.request(rt.Stream(on=False))
    client.telemetry(0.2)  # drain what was already on the way
    assert client.telemetry(0.5) == []
    bad = client.request(rt.Stream(on=True, period_ms=1))
    assert bad.rc == smperr.MGMT_ERR.EINVAL
    client.request(rt.Stream(on=True, period_ms=100, fields=["scores", "latency", "resources"]))


def test_load_model_switches_to_a_different_model(board: VirtualBoard, client: Client,
                                                  example: bytes) -> None:
    sine = sine_model()
    client.upload_file(sine, "/lfs/models/sine.tflite")
    reply = client.request(rt.LoadModel(path="/lfs/models/sine.tflite", sha256=sha(sine)))
    assert reply.sha256 == sha(sine) and reply.size == len(sine) and reply.arena_used > 0
    assert board.loaded_model_sha256 == sha(sine).hex()
    info = client.request(rt.ModelInfo())
    assert info.inputs[0].dtype == "float32" and info.labels == ["class_0"]
    for x in (0.5, math.pi / 2, 4.0):
        out = client.request(rt.Infer(input=np.float32([[x]]).tobytes())).output
        assert abs(float(np.frombuffer(out, np.float32)[0]) - math.sin(x)) < 0.15


@pytest.mark.parametrize(("contents", "code"), [
    (lambda m: m[: len(m) // 2], ERR.BAD_MODEL),         # a cut file
    (lambda m: b"\x00" * 4 + b"NOPE" + m[8:], ERR.BAD_MODEL),  # not a TFLite file
    (lambda m: bytes(4096), ERR.BAD_MODEL),              # erased flash
])
def test_failed_load_keeps_the_previous_model(board: VirtualBoard, client: Client,
                                              example: bytes, contents, code) -> None:
    bad = contents(example)
    client.upload_file(bad, "/lfs/models/bad.tflite")
    reply = client.request(rt.LoadModel(path="/lfs/models/bad.tflite"), timeout_s=30)
    assert reply.err.rc == code
    assert board.loaded_model_sha256 == sha(example).hex()
    assert client.request(rt.ModelInfo()).sha256 == sha(example)
    assert client.request(rt.Infer(input=bytes(384))).latency_us > 0  # still running


def test_load_refuses_missing_files_and_wrong_digests(board: VirtualBoard, client: Client,
                                                      example: bytes) -> None:
    assert client.request(rt.LoadModel(path="/lfs/missing.tflite")).err.rc == ERR.NOT_FOUND
    client.upload_file(sine_model(), "/lfs/models/sine.tflite")
    wrong = client.request(rt.LoadModel(path="/lfs/models/sine.tflite", sha256=bytes(32)))
    assert wrong.err.rc == ERR.DIGEST_MISMATCH
    assert board.loaded_model_sha256 == sha(example).hex()


TINY = BoardLimits(id="tiny", name="tiny test board", mcu="test", flash=96 * KiB, ram=8 * KiB,
                   flash_reserve=32 * KiB, ram_reserve=6 * KiB, model_max=16 * KiB)


def test_board_limits_too_large_and_arena_too_small() -> None:
    sine, example = sine_model(), example_model()
    padded = example + bytes(8000)  # still a valid model, but over the 16 KiB model region
    with VirtualBoard(limits=TINY, default_model=False) as vb, Client(vb.port) as c:
        assert c.request(rt.Infer(input=b"x")).err.rc == ERR.NO_MODEL
        assert c.request(rt.ModelInfo()).loaded is False
        c.upload_file(sine, "/lfs/sine.tflite")
        assert c.request(rt.LoadModel(path="/lfs/sine.tflite")).sha256 == sha(sine)
        c.upload_file(example, "/lfs/example.tflite")
        assert c.request(rt.LoadModel(path="/lfs/example.tflite")).err.rc == ERR.ARENA_TOO_SMALL
        c.upload_file(padded, "/lfs/padded.tflite")
        assert c.request(rt.LoadModel(path="/lfs/padded.tflite")).err.rc == ERR.TOO_LARGE
        assert vb.loaded_model_sha256 == sha(sine).hex()
        info = c.request(rt.ModelInfo())
        assert info.arena_size == 2 * KiB and info.sha256 == sha(sine)


def test_state_survives_a_restart(tmp_path) -> None:
    sine = sine_model()
    blob = hashlib.sha256(b"seed").digest() * 100
    with VirtualBoard(state_dir=tmp_path) as vb, Client(vb.port) as c:
        first_port = vb.port
        c.upload_file(blob, "/lfs/keep.bin")
        c.upload_file(sine, "/lfs/models/sine.tflite")
        c.request(rt.LoadModel(path="/lfs/models/sine.tflite", labels=["sin"]))
    with VirtualBoard(state_dir=tmp_path) as vb, Client(vb.port) as c:
        assert vb.loaded_model_sha256 == sha(sine).hex()  # not the bundled default again
        info = c.request(rt.ModelInfo())
        assert info.path == "/lfs/models/sine.tflite" and info.labels == ["sin"]
        assert c.download_file("/lfs/keep.bin") == blob
        assert wait_for(lambda: vb.port is not None) and vb.port.startswith("/dev/")
    assert first_port.startswith("/dev/")
