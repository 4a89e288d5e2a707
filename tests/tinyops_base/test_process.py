from __future__ import annotations

import signal
import subprocess
import sys

from tinyops_base.process import stop_process


def _child(code: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"ready\n"  # its handlers are installed
    return proc


def test_a_child_that_listens_ends_on_sigterm() -> None:
    proc = _child("import time\nprint('ready', flush=True)\ntime.sleep(60)")
    assert stop_process(proc, grace_s=5.0) == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed() -> None:
    proc = _child("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                  "print('ready', flush=True)\ntime.sleep(60)")
    assert stop_process(proc, grace_s=0.5) == -signal.SIGKILL


def test_an_ended_child_keeps_its_exit_code() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait(30)
    assert stop_process(proc) == 3
