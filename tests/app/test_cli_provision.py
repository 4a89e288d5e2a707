"""CLI: flash (one board, a station of four, --all, --on-plug), validate, records."""

from __future__ import annotations

import csv
import hashlib
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from app.cli import main
from device_drivers import paths
from device_drivers.virtual import VirtualBoard

EXAMPLE = paths.resources_dir() / "examples" / "vibration"
MODEL_PATH = EXAMPLE / "model_int8.tflite"
BASE = MODEL_PATH.read_bytes()


def _variant(tmp_path: Path, n: int = 1) -> tuple[Path, str]:
    data = BASE + b"\x00" * (16 * n)
    path = tmp_path / f"variant{n}.tflite"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def test_flash_one_board_json_names_backend_bytes_time_and_both_digests(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, digest = _variant(tmp_path)
    with VirtualBoard(board="virtual") as vb:
        code = main(["flash", str(model), "--port", vb.port, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert code == 0 and vb.loaded_model_sha256 == digest
    assert out["ok"] is True and out["backend"] == "smp"
    assert out["bytes"] == model.stat().st_size
    assert out["duration_s"] > 0 and out["throughput_Bps"] > 0
    assert out["local_digest"] == out["device_digest"] == digest
    assert out["previous_sha256"] == hashlib.sha256(BASE).hexdigest()


def test_station_all_four_virtual_boards(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    model, digest = _variant(tmp_path, 2)
    boards = [VirtualBoard(board="virtual", seed=i) for i in range(4)]
    try:
        for vb in boards:
            vb.start()
        started = time.monotonic()
        code = main(["flash", str(model), "--all", "--json"])
        elapsed = time.monotonic() - started
        lines = _json_lines(capsys.readouterr().out)
        assert code == 0
        assert all(vb.loaded_model_sha256 == digest for vb in boards)
    finally:
        for vb in boards:
            vb.stop()
    events = [e for e in lines if e["event"] == "board"]
    summary = lines[-1]
    assert summary["event"] == "summary" and summary["passed"] == 4 and summary["failed"] == 0
    assert {e["port"] for e in events} == {vb.port for vb in boards}
    assert all(e["state"] == "ok" and e["result"]["device_digest"] == digest for e in events)
    print(f"\nstation: 4 virtual boards flashed in {elapsed:.2f} s")


def test_station_reports_a_failed_board_and_exits_1(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    model, digest = _variant(tmp_path, 3)
    with VirtualBoard(board="virtual") as vb:
        code = main(["flash", str(model), "--port", vb.port, "--port", "/dev/ttyNOPE9"])
        captured = capsys.readouterr()
        assert vb.loaded_model_sha256 == digest
    assert code == 1
    assert "1 passed, 1 failed" in captured.out
    assert "FAIL /dev/ttyNOPE9" in captured.out and "does not exist" in captured.out
    assert f"PASS {vb.port}" in captured.err  # one status line per board


def test_on_plug_flashes_a_board_plugged_in_later(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from device_drivers.boards import watcher

    model, digest = _variant(tmp_path, 4)
    first_snapshot = threading.Event()
    snapshot = watcher._snapshot

    def noted(enumerate_boards):  # type: ignore[no-untyped-def]
        boards = snapshot(enumerate_boards)
        first_snapshot.set()
        return boards

    monkeypatch.setattr(watcher, "_snapshot", noted)
    result: dict[str, int] = {}
    runner = threading.Thread(target=lambda: result.setdefault(
        "code", main(["flash", str(model), "--on-plug", "--limit", "1", "--json"])))
    runner.start()
    # the board is plugged in only after the watcher's first snapshot (taken without it)
    assert first_snapshot.wait(30), "the watcher took no snapshot"
    with VirtualBoard(board="virtual") as vb:
        runner.join(60)
        assert not runner.is_alive()
        assert vb.loaded_model_sha256 == digest
    assert result["code"] == 0
    lines = _json_lines(capsys.readouterr().out)
    assert lines[-1]["passed"] == 1


def test_validate_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with VirtualBoard(board="virtual") as vb:
        code = main(["validate", str(MODEL_PATH), "--port", vb.port, "--data",
                     str(EXAMPLE / "eval.npz"), "--limit", "24", "--json"])
        out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["bit_exact"] and out["samples"] == 24
    assert out["accuracy_device"] == out["accuracy_host"]
    assert out["latency_us_p95"] >= out["latency_us_median"] > 0

    assert main(["records", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs["count"] == 1 and recs["records"][0]["operation"] == "validate"
    assert recs["records"][0]["verify"] == "bit-exact 24/24"

    dest = tmp_path / "records.csv"
    assert main(["records", "--export", str(dest)]) == 0
    with dest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1 and rows[0]["artifact"] == MODEL_PATH.name
    assert main(["records"]) == 0
    assert "validate" in capsys.readouterr().out


def test_bad_usage_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flash", str(MODEL_PATH)]) == 2
    assert "no board given" in capsys.readouterr().err
    assert main(["flash", str(tmp_path / "missing.tflite"), "--port", "/dev/null"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["flash", str(MODEL_PATH), "--port", "/dev/ttyNOPE9", "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["ok"] is False


@pytest.mark.parametrize("flag,value", [("--baud", "-5"), ("--baud", "0"), ("--baud", "fast"),
                                        ("--timeout-scale", "-1"), ("--limit", "0")])
def test_bad_numbers_are_usage_errors(flag: str, value: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["flash", str(MODEL_PATH), "--port", "loop://", flag, value])
    assert exited.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and flag in errors[0] and value in errors[0]


def test_negative_baud_from_the_shell_is_one_line_without_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "app.cli", "flash", str(MODEL_PATH),
                           "--port", "loop://", "--baud", "-5"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "ValueError" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert errors == ["tinyops flash: error: argument --baud: -5 is not a positive number"]
