"""Run the port + glue self-test firmware once in QEMU: a model, optional inputs, JSON lines.

The self-test (``firmware/port/qemu_mps/selftest_main.c``) loads ``selftest-model.tflite`` from
its storage with the same glue as the runtime, prints what it measured on UART0 (here QEMU's
stdout) and exits through semihosting. ``target_arena`` is ``tinyops analyze --target``: the
arena TFLM reports (``arena_used_bytes()``) for the model on that core with those kernels.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError, TinyOpsError
from device_drivers.firmware.build import CPUS, build
from device_drivers.firmware.qemu import qemu_argv

LOAD_ERRORS = {0: None, 1: "no model", 2: "bad model (verification, or an operator this "
               "firmware does not register)", 3: "the tensor arena is too small",
               5: "model file not found", 7: "the model is larger than the model buffer"}


def run_selftest(elf: str | Path, machine: str, model: bytes, inputs: bytes | None = None,
                 timeout_s: float = 120.0) -> list[dict[str, Any]]:
    """The self-test's JSON lines for ``model`` (and the concatenated input tensors)."""
    with tempfile.TemporaryDirectory(prefix="tinyops-fw-probe-") as tmp:
        state = Path(tmp)
        (state / "lfs_selftest-model.tflite").write_bytes(model)
        if inputs is not None:
            (state / "lfs_selftest-input.bin").write_bytes(inputs)
        try:
            r = subprocess.run(qemu_argv(elf, machine, "stdio"), cwd=state, capture_output=True,
                               stdin=subprocess.DEVNULL, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            raise TinyOpsError(f"the firmware self-test did not finish in {timeout_s:.0f} s "
                               f"on {machine}") from exc
    lines = []
    for raw in r.stdout.decode(errors="replace").splitlines():
        raw = raw.strip()
        if raw.startswith("{"):
            try:
                lines.append(json.loads(raw))
            except ValueError:
                continue
    if not lines:
        raise TinyOpsError(f"the firmware self-test printed nothing on {machine} (exit "
                           f"{r.returncode}): {r.stderr.decode(errors='replace')[-400:]}")
    lines[0]["exit_code"] = r.returncode
    lines[0]["log"] = r.stderr.decode(errors="replace")[-2000:]
    return lines


def target_arena(model: str | Path | bytes, cpu: str, kernels: str = "cmsis-nn") -> dict[str, Any]:
    """What the firmware measures for ``model`` on ``cpu``: arena used, or why it fails."""
    if isinstance(model, bytes):
        data = model
    else:
        try:
            data = Path(model).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read {model}: {exc.strerror or exc}") from exc
    built = build(cpu, kernels, "selftest")
    first = run_selftest(built.elf, CPUS[cpu]["machine"], data)[0]
    rc = int(first.get("load", -1))
    error = LOAD_ERRORS.get(rc, f"load failed (code {rc})")
    return {"cpu": cpu, "kernels": kernels, "machine": built.machine,
            "arena_used": first.get("arena_used") if rc == 0 else None,
            "arena_size": first.get("arena_size"), "load_rc": rc, "error": error,
            "runtime": first.get("version"), "elf": built.elf,
            "tflm_log": first["log"].strip()[-600:] if rc != 0 else None,
            "note": "measured in QEMU by TFLM's arena_used_bytes() on the target ABI "
                    "(32-bit Arm); QEMU is not cycle-accurate, so no latency is claimed"}
