"""Ctrl-C during ``tinyops flash``: a real process, a real SIGINT to its process group.

The flash stops through its cancel token (no asyncio noise), says what the board runs now
(the previous model: the load is atomic), exits 130 and leaves one record, ``cancelled``.
"""

from __future__ import annotations

import hashlib
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from device_drivers import paths
from device_drivers.virtual import VirtualBoard
from device_drivers.virtual.faults import FaultConfig
from fleet_ops.records import open_store

MODEL = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"
DEADLINE_S = 120.0


def _lines(stream: object, out: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        out.put(line)
    out.put("")  # end of stream


def test_sigint_during_flash_cancels_records_and_exits_130(tmp_path: Path) -> None:
    base = MODEL.read_bytes()
    previous = hashlib.sha256(base).hexdigest()
    model = tmp_path / "bigger.tflite"
    model.write_bytes(base + b"\x00" * 12_000)  # slow at 19,200 baud: Ctrl-C lands mid-way
    with VirtualBoard(board="virtual", faults=FaultConfig(baud=19_200)) as vb:
        assert vb.loaded_model_sha256 == previous
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "flash", str(model), "--port", vb.port],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
        err: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
        seen: list[str] = []
        deadline = time.monotonic() + DEADLINE_S
        try:
            # synchronised on the flash's own output: its 25 % line comes mid-upload
            while not any("25." in line and "B to " in line for line in seen):
                line = err.get(timeout=max(0.1, deadline - time.monotonic()))
                assert line, f"the flash ended before 25 %: {''.join(seen)}"
                seen.append(line)
            os.killpg(proc.pid, signal.SIGINT)
            code = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        while (line := err.get(timeout=10)) != "":
            seen.append(line)
        text = "".join(seen)
        assert vb.loaded_model_sha256 == previous  # the load is atomic: untouched
    assert code == 130, text
    assert "Task was destroyed" not in text and "Traceback" not in text, text
    assert f"still runs the previous model (sha256 {previous[:16]}" in text, text
    records = open_store().list(operation="flash")
    assert [r.result for r in records] == ["cancelled"], records
    assert records[0].artifact == model.name
    assert "cancelled" in (records[0].error or "")
