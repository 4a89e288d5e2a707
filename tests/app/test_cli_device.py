"""``tinyops info`` / ``monitor`` against a real virtual board, and bad input everywhere."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from app.cli import main
from device_drivers.recording import TelemetryRecorder, read_recording
from device_drivers.telemetry import TelemetryBatch
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.signal import STATES


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    with VirtualBoard(board="nano33ble", state_dir=tmp_path_factory.mktemp("st")) as vb:
        yield vb


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_describes_the_board(board: VirtualBoard, capsys) -> None:
    code, out, _ = _run(capsys, "info", "--port", board.port, "--json")
    info = json.loads(out)
    assert code == 0 and info["smp"] and info["board"] == "nano33ble"
    assert info["model"]["sha256"] == board.loaded_model_sha256
    assert info["model"]["labels"] == list(STATES)


def test_monitor_summary_and_recording_match_what_the_board_sent(board: VirtualBoard,
                                                               capsys, tmp_path: Path) -> None:
    record = tmp_path / "live.csv"
    lines_before = board.counters.telemetry_lines
    code, out, _ = _run(capsys, "monitor", "--port", board.port, "--duration", "1.5",
                        "--record", str(record), "--json")
    sent = board.counters.telemetry_lines - lines_before
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0 and summary["format"] == "json"
    count = summary["channels"]["latency_us"]["count"]
    assert 3 <= count <= sent
    assert summary["top_label"] in STATES
    assert summary["dropped"] == 0
    recorded = read_recording(record)
    assert len(recorded["latency_us"][1]) == count
    assert summary["recorded"]["rows"] == sum(len(v) for _, v in recorded.values())
    assert set(recorded) == set(summary["channels"])


def test_monitor_stops_cleanly_on_sigterm(board: VirtualBoard, tmp_path: Path) -> None:
    record = tmp_path / "live.csv"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "monitor", "--port", board.port,
                             "--json", "--record", str(record)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    # SIGTERM once the monitor is in its loop: its recording holds a sample (the handler is
    # installed before the port opens). Polled with a deadline, not slept for.
    deadline = time.monotonic() + 60
    while not (record.exists() and len(record.read_text().splitlines()) > 1):
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no telemetry recorded within 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] is True and result["recorded"]["rows"] >= 1


def test_recording_keeps_time_order_across_a_decade_boundary(tmp_path: Path) -> None:
    t = np.array([9.90, 9.95, 10.00, 10.05, 10.10])
    batch = TelemetryBatch(channels={"a": (t, np.arange(5.0)), "b": (t + 0.01, np.arange(5.0))},
                           lines=[], top_label=None, parsed=5, dropped=0, format="json")
    path = tmp_path / "r.csv"
    with TelemetryRecorder(path) as rec:
        rec.write(batch)
    times = [float(line.split(",")[0]) for line in path.read_text().splitlines()[1:]]
    assert times == sorted(times) and len(times) == 10


@pytest.mark.parametrize("argv, text", [
    (["info", "--port", "loop://", "--baud", "-5"], "positive"),
    (["monitor", "--port", "loop://", "--baud", "0"], "positive"),
    (["info", "--port", "/dev/ttyNOPE3"], "does not exist"),
    (["monitor", "--port", "socket://127.0.0.1:9", "--duration", "1"], "127.0.0.1:9"),
])
def test_bad_input_is_one_line_and_exit_2(argv: list[str], text: str) -> None:
    result = subprocess.run([sys.executable, "-m", "app.cli", *argv], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert text in result.stderr


def test_export_to_an_unusable_path_is_exit_2(tmp_path: Path) -> None:
    model = Path(__file__).resolve().parents[2] / "resources/examples/vibration/model_int8.tflite"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = subprocess.run([sys.executable, "-m", "app.cli", "export", str(model), "--format",
                             "arduino", "-o", str(blocker / "lib")], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
