"""The arduino back end: compile the exported sketch with ``arduino-cli`` and upload it.

The sketch (from ``tinyops export MODEL --format arduino``) carries the model as a C array
and the TinyOps runtime; ``arduino-cli compile --fqbn FQBN`` builds it for the board and
``arduino-cli upload`` flashes it with the board's own tool (bossac, avrdude, ...), which
handles the 1200-baud touch itself. Those tools do not verify what the board runs, so the
proof is the runtime's model-info after the reset: its sha256 must be the model's.

Progress is by phase (compile, upload, wait for the runtime, verify); a cancel stops the
running ``arduino-cli`` process. Timeouts: compile 10 min (first builds download nothing
but do compile the core), upload scaled with the binary size at a slow 10 KB/s.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from device_drivers.errors import Cancelled, DeviceError, InputError
from device_drivers.flashing import probe
from device_drivers.flashing.base import (
    Artifact,
    BackendClass,
    CancelToken,
    FlashOptions,
    FlashResult,
    Progress,
    Recogniser,
    Stopwatch,
    board_of,
    check_cancel,
    scaled_timeout,
)
from device_drivers.flashing.registry import register

log = logging.getLogger(__name__)

INSTALL_HINT = ("install arduino-cli (https://arduino.github.io/arduino-cli/latest/"
                "installation/, e.g. `brew install arduino-cli` or the install.sh script), "
                "then `arduino-cli core install <vendor>:<arch>` for the board; or flash "
                "another way (--backend smp|uf2)")
COMPILE_TIMEOUT_S = 600.0


def find_cli() -> str | None:
    return os.environ.get("TINYOPS_ARDUINO_CLI") or shutil.which("arduino-cli")


@register
class ArduinoBackend(BackendClass):
    """arduino-cli: compile and upload a generated sketch or library (a directory)."""

    name: ClassVar[str] = "arduino"
    kinds: ClassVar[Mapping[str, Recogniser | None]] = {"arduino-sketch": None}
    claims: ClassVar[tuple[str, ...]] = ("arduino-sketch",)

    def flash(self, artifact: Artifact, port: str | None, options: FlashOptions,
              progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        cli = find_cli()
        if cli is None:
            raise DeviceError("arduino-cli is not installed (not on PATH)", INSTALL_HINT)
        if artifact.kind != "arduino-sketch" or artifact.path is None:
            raise InputError(f"{artifact.name} is not an Arduino sketch directory",
                             "export it first: tinyops export MODEL --format arduino")
        if not port:
            raise InputError("the arduino back end needs --port", "pass the board's port")
        board = board_of(options)
        fqbn = options.extra.get("fqbn") or (board.fqbn if board else None)
        if not fqbn:
            raise InputError("no FQBN for this board",
                             "pass --board ID of a registry board with an fqbn")
        expected = artifact.expected_model_sha256
        if expected is None:
            raise InputError(f"cannot verify {artifact.name}: the model's sha256 is unknown",
                             "flash the .tflite with --backend arduino, so TinyOps exports "
                             "the sketch and knows the model")
        sketch, libs = _sketch(artifact.path)
        previous = probe.previous_model(port)
        with tempfile.TemporaryDirectory(prefix="tinyops-arduino-") as build:
            progress(0.02, f"compiling for {fqbn}")
            self._run([cli, "compile", "--fqbn", fqbn, "--build-path", build, *libs,
                       str(sketch)], COMPILE_TIMEOUT_S * options.timeout_scale,
                      cancel, "compile")
            binary = _largest_binary(Path(build))
            progress(0.5, f"uploading to {port}")
            self._run([cli, "upload", "--fqbn", fqbn, "-p", port, "--input-dir", build,
                       str(sketch)],
                      scaled_timeout(binary, 10_000.0, 30.0, options.timeout_scale),
                      cancel, "upload")
        progress(0.85, "waiting for the runtime to answer")
        info = probe.wait_for_runtime(port, options.reboot_timeout_s * options.timeout_scale,
                                      cancel, want_sha256=expected)
        device = bytes(info.sha256 or b"").hex()
        progress(1.0, "verified: the runtime reports the model's sha256")
        return FlashResult(
            ok=True, backend=self.name, port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=binary or artifact.size,
            duration_s=clock.elapsed, digest_algo="sha256", local_digest=expected,
            device_digest=device, verified=device == expected, dest=fqbn,
            board=board.id if board else None, previous_sha256=previous,
            notes=[f"compiled and uploaded with {Path(cli).name} for {fqbn}"])

    def _run(self, argv: list[str], timeout_s: float, cancel: CancelToken | None,
             step: str) -> str:
        log.info("arduino %s: %s", step, " ".join(argv))
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as out:
            try:
                proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
            except OSError as exc:
                raise DeviceError(f"cannot run arduino-cli: {exc}", INSTALL_HINT) from exc
            deadline = time.monotonic() + timeout_s
            while proc.poll() is None:
                if (cancel is not None and cancel.is_set()) or time.monotonic() > deadline:
                    _stop(proc)
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"arduino {step} cancelled by the user")
                    raise DeviceError(f"arduino-cli {step} took longer than {timeout_s:.0f} s",
                                      "check the board and its port, then try again")
                time.sleep(0.05)
            out.seek(0)
            output = out.read()
        if proc.returncode != 0:
            tail = " | ".join(line for line in output.strip().splitlines()[-3:])
            missing = "platform not installed" in output.lower() or "not found" in output.lower()
            hint = ("install the board's core: arduino-cli core install VENDOR:ARCH" if missing
                    else "see the arduino-cli output in the log")
            log.warning("arduino-cli %s failed:\n%s", step, output)
            raise DeviceError(f"arduino-cli {step} failed (exit {proc.returncode}): {tail}",
                              hint)
        check_cancel(cancel, f"arduino {step}")
        return output


def _stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _sketch(root: Path) -> tuple[Path, list[str]]:
    """The sketch to build and the ``--library`` options: the directory itself when it holds
    a ``.ino``; for an exported library, its first example with the library passed along."""
    if any(root.glob("*.ino")):
        return root, []
    examples = sorted(root.glob("examples/*/*.ino"))
    if not examples:
        raise InputError(f"{root} has no sketch to build (no *.ino, no examples/*/*.ino)",
                         "export it again: tinyops export MODEL --format arduino")
    return examples[0].parent, ["--library", str(root)]


def _largest_binary(build: Path) -> int:
    sizes = [p.stat().st_size for p in build.glob("*") if p.suffix in (".bin", ".hex", ".uf2")]
    return max(sizes, default=0)
