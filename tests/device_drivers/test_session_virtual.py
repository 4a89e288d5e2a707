"""The device session against the virtual board over a real pseudo-terminal (and TCP)."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np
import pytest

from device_drivers import paths
from device_drivers.device_info import device_info
from device_drivers.errors import DeviceError, DisconnectedError, VerifyError
from device_drivers.link import DeviceSession, SMPErrorResponse
from device_drivers.protocol import runtime
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.faults import FaultConfig
from device_drivers.virtual.signal import STATES, VibrationSource

pytestmark = pytest.mark.no_tflm  # also run with tflite-micro blocked (CI)

EXAMPLE = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"


def _other_model() -> bytes:
    """A second, different valid model: the sine example tflite-micro ships."""
    from tests.device_drivers.test_virtual_support import tflm_sine_model

    return tflm_sine_model()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    state = tmp_path_factory.mktemp("vb-state")
    with VirtualBoard(board="nano33ble", state_dir=state) as vb:
        yield vb


@pytest.fixture
def session(board: VirtualBoard):
    with DeviceSession.open(board.port, timeout_s=3.0) as s:
        yield s


def test_info_reports_runtime_board_and_default_model(session: DeviceSession) -> None:
    info = device_info(session)
    assert info["smp"] is True
    assert info["params"]["buf_size"] >= 512
    assert info["runtime"].startswith("tinyops-runtime")
    assert info["board"] == "nano33ble"
    model = info["model"]
    assert model["sha256"] == hashlib.sha256(EXAMPLE.read_bytes()).hexdigest()
    assert model["labels"] == list(STATES)
    assert model["inputs"][0]["dtype"] == "int8"
    assert 0 < model["arena_used"] <= info["arena_size"]


def test_upload_is_verified_by_the_device_and_load_switches_models(
        session: DeviceSession, board: VirtualBoard) -> None:
    data = _other_model()
    seen: list[float] = []
    result = session.upload_file(data, "/lfs/models/sine.tflite",
                                 progress=lambda f, _m: seen.append(f))
    assert result.verified and result.verify_method == "sha256"
    assert result.device_sha256 == hashlib.sha256(data).hexdigest()
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    loaded = session.load_model(result.dest, bytes.fromhex(result.sha256))
    assert loaded.sha256.hex() == result.sha256
    assert board.loaded_model_sha256 == result.sha256
    # put the example back for the other tests
    example = EXAMPLE.read_bytes()
    back = session.upload_file(example, "/lfs/models/example.tflite")
    session.load_model(back.dest, bytes.fromhex(back.sha256), labels=list(STATES))
    assert board.loaded_model_sha256 == hashlib.sha256(example).hexdigest()


def test_load_model_with_wrong_digest_is_refused_and_keeps_the_model(
        session: DeviceSession, board: VirtualBoard) -> None:
    before = board.loaded_model_sha256
    session.upload_file(_other_model(), "/lfs/models/x.tflite")
    with pytest.raises(SMPErrorResponse) as info:
        session.load_model("/lfs/models/x.tflite", b"\x00" * 32)
    assert info.value.group == runtime.GROUP_ID
    assert info.value.rc == runtime.RUNTIME_ERR.DIGEST_MISMATCH
    assert board.loaded_model_sha256 == before


def test_infer_classifies_windows_on_the_device(session: DeviceSession) -> None:
    info = session.model_info()
    assert info is not None and info.loaded
    spec = info.inputs[0]
    source = VibrationSource(seed=123)
    correct = 0
    trials = 0
    for state in range(len(STATES)):
        for _ in range(6):
            window = source.window(state, spec.shape[1])
            q = np.clip(np.round(window / spec.scale) + spec.zero_point, -128, 127)
            raw, latency = session.infer(q.astype(np.int8).tobytes())
            assert len(raw) == int(np.prod(info.outputs[0].shape))
            assert latency > 0
            correct += int(np.argmax(np.frombuffer(raw, np.int8)) == state)
            trials += 1
    assert correct >= trials - 2, f"{correct}/{trials} windows classified right"


def test_infer_with_wrong_input_size_is_a_device_error(session: DeviceSession) -> None:
    with pytest.raises(SMPErrorResponse) as info:
        session.infer(b"\x00" * 7)
    assert info.value.rc == runtime.RUNTIME_ERR.BAD_INPUT


def test_stream_toggles_telemetry_and_stats_count_inferences(session: DeviceSession) -> None:
    session.stream(True, period_ms=50)
    latencies: list[float] = []
    deadline = time.monotonic() + 30
    while len(latencies) < 4:  # polled on the condition, not slept for
        assert time.monotonic() < deadline, f"only {len(latencies)} readings in 30 s"
        batch = session.telemetry()
        if "latency_us" in batch.channels:
            assert batch.format == "json" and batch.top_label in STATES
            latencies.extend(batch.channels["latency_us"][1])
    assert session.stats().inferences >= 4
    session.stream(False)
    stopped = session.stats().inferences
    session.telemetry()  # what was sent before the stop
    start = session.stats().uptime_ms
    deadline = time.monotonic() + 30
    while session.stats().uptime_ms - start < 10 * 50:  # ten stream periods, device clock
        assert time.monotonic() < deadline, "the board's clock stopped"  # each stats() is a
        # round trip to the device: its clock paces this loop, the host's does not
    # streaming would have run ~10 more inferences by now; at most one in flight at the stop
    assert session.stats().inferences - stopped <= 1
    assert "latency_us" not in session.telemetry().channels
    session.stream(True, period_ms=100)


def test_tcp_board_works_through_a_socket_url(tmp_path: Path) -> None:
    with VirtualBoard(board="nano33ble", tcp_port=0, state_dir=tmp_path) as vb:
        assert vb.port.startswith("socket://127.0.0.1:")
        with DeviceSession.open(vb.port) as s:
            assert s.echo("over tcp") == "over tcp"
            assert s.model_info().loaded


@pytest.mark.parametrize("cut_at", [3000, 9000])
def test_cut_link_fails_cleanly_and_the_board_keeps_its_model(tmp_path: Path,
                                                             cut_at: int) -> None:
    faults = FaultConfig(disconnect_after=cut_at)
    with VirtualBoard(board="nano33ble", faults=faults, state_dir=tmp_path) as vb:
        before = vb.loaded_model_sha256
        assert before is not None
        with DeviceSession.open(vb.port, timeout_s=1.0) as s, \
                pytest.raises(DisconnectedError) as info:
            result = s.upload_file(_other_model() * 2, "/lfs/models/new.tflite")
            s.load_model(result.dest, bytes.fromhex(result.sha256))
        assert "lost" in str(info.value)
        assert vb.loaded_model_sha256 == before


def test_lossy_link_upload_recovers_by_resuming(tmp_path: Path) -> None:
    faults = FaultConfig(drop=0.15, seed=7)
    data = _other_model()
    with VirtualBoard(board="nano33ble", faults=faults, state_dir=tmp_path) as vb, \
            DeviceSession.open(vb.port, timeout_s=0.5) as s:
        result = None
        for _ in range(3):  # even the verify request can be dropped: the caller retries
            try:
                result = s.upload_file(data, "/lfs/models/lossy.tflite", max_retries=20)
                break
            except DeviceError:
                continue
        assert result is not None and result.verified
        assert result.device_sha256 == hashlib.sha256(data).hexdigest()


def test_corrupting_link_never_yields_a_wrong_verified_file(tmp_path: Path) -> None:
    faults = FaultConfig(corrupt=0.03, seed=3)
    data = _other_model()
    outcomes = []
    with VirtualBoard(board="nano33ble", faults=faults, state_dir=tmp_path) as vb, \
            DeviceSession.open(vb.port, timeout_s=0.5) as s:
        for attempt in range(3):
            dest = f"/lfs/c{attempt}.tflite"
            try:
                result = s.upload_file(data, dest, max_retries=20)
            except (DeviceError, VerifyError):
                outcomes.append("clean failure")
                continue
            # "verified" must mean the board really stored these bytes
            assert result.device_sha256 == hashlib.sha256(data).hexdigest()
            assert vb.flash.read_file(dest) == data
            outcomes.append("verified")
        assert vb.counters.lines_corrupted > 0, "the fault never fired: the test proved nothing"
    assert "verified" in outcomes, outcomes


def test_slow_uart_link_is_paced_and_still_verified(tmp_path: Path) -> None:
    faults = FaultConfig(baud=115200)
    data = _other_model()
    with VirtualBoard(board="nano33ble", faults=faults, state_dir=tmp_path) as vb, \
            DeviceSession.open(vb.port, baudrate=115200, timeout_s=2.0) as s:
        result = s.upload_file(data, "/lfs/models/slow.tflite")
    assert result.verified
    # base64 framing costs ~4/3: the line cannot beat 11 520 B/s of payload x 3/4
    assert result.throughput_bps < 11520 * 0.8


def test_delayed_answers_within_the_timeout_still_work(tmp_path: Path) -> None:
    with VirtualBoard(board="nano33ble", faults=FaultConfig(delay_ms=150),
                      state_dir=tmp_path) as vb, \
            DeviceSession.open(vb.port, timeout_s=1.0) as s:
        started = time.monotonic()
        assert s.echo("late") == "late"
        assert time.monotonic() - started >= 0.15
