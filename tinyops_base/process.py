"""Ending a child process: ask it (SIGTERM), wait, then insist (SIGKILL). One place, so every
caller gets the same bounded wait and never leaves a zombie."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str],
                 grace_s: float = 5.0) -> int | None:
    """Terminate ``proc`` and wait up to ``grace_s``; kill it if it is still there. Returns
    its exit code (None only if even SIGKILL was not reaped within ``grace_s``)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                return None
    return proc.returncode
