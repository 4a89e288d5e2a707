"""``tinyops firmware run --json``: one JSON line with the port, a board until SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from device_drivers.link import DeviceSession


def test_run_prints_the_port_and_serves_until_stopped(fw_build, tmp_path):
    fw_build("cortex-m4", "cmsis-nn", "runtime")  # built (or found) once per session
    state = tmp_path / "state"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "firmware", "run", "--machine",
                             "mps2-an386", "--state", str(state), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()  # the first line, as `tinyops sim --json`
        info = json.loads(line)
        assert info["port"].startswith("socket://127.0.0.1:")
        assert info["machine"] == "mps2-an386" and info["kernels"] == "cmsis-nn"
        assert info["state"] == str(state)
        with DeviceSession.open(info["port"], timeout_s=5.0) as dev:
            assert dev.echo("from the test") == "from the test"
            assert dev.model_info().arena_size == 2 * 1024 * 1024
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert (state / "qemu.log").is_file()
