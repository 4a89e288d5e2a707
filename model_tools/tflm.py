"""Run models in the tflite-micro interpreter, safely, in a child process.

The TFLM Python runtime crashes the process on a too-small arena or a forged model, so every
call goes to ``_tflm_worker`` over a pipe (:mod:`model_tools._tflm_process`: resource limits,
data-only replies checked on receipt, never pickle). A crash becomes a result
(``crashed=True``) and the worker is restarted; it never takes the caller down. A reply that is
not well-formed raises ``WorkerProtocolError`` (the worker is stopped, nothing is used). The
runtime's own messages are in ``BuildResult.log`` and ``TflmError.log`` (bounded).

- ``check_model``: can TFLM build and run the model? If not, which operator fails and why.
- ``measure_arena``: the exact minimum tensor arena (bisection, 16-byte resolution).
- ``run_model``: raw int8/float tensors in, raw output tensors out, as on the device.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_tools._tflm_process import (
    MAX_LOG,
    MAX_REPLY,
    TFLM_MISSING,
    TflmError,
    WorkerCrashed,
    WorkerLimits,
    WorkerProcess,
    WorkerProtocolError,
    tflm_available,
)
from model_tools.errors import Cancelled, ModelToolsError
from tinyops_base.progress import Progress

__all__ = [
    "MAX_LOG",
    "MAX_REPLY",
    "TFLM_MISSING",
    "ArenaMeasurement",
    "BuildResult",
    "TflmError",
    "TflmProcess",
    "WorkerCrashed",
    "WorkerLimits",
    "WorkerProtocolError",
    "check_model",
    "measure_arena",
    "run_model",
    "tflm_available",
]

log = logging.getLogger(__name__)

ARENA_ALIGN = 16
MAX_ARENA = 256 * 1024 * 1024
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
_FAILED_NODE = re.compile(r"Node (\w+) \(number (\d+)f?\) failed to (prepare|invoke|init)")


@dataclass
class BuildResult:
    ok: bool
    arena: int
    crashed: bool = False
    error: str | None = None
    failing_op: str | None = None
    log: str = ""
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)


class TflmProcess(WorkerProcess):
    """A worker holding one model: build it with an arena size, run batches through it."""

    def __enter__(self) -> TflmProcess:
        return self

    def build(self, arena: int) -> BuildResult:
        """Build the interpreter with ``arena`` bytes and invoke it once on zeros."""
        pos = self._new_log_section()
        try:
            reply = self.request({"cmd": "build", "arena": int(arena)})
        except WorkerCrashed as exc:
            self.restarts += 1
            text = exc.log_tail
            return BuildResult(False, arena, crashed=True, error=str(exc), log=text,
                               failing_op=_failing_op(text))
        text = self.log_since(pos)
        if reply["ok"]:
            return BuildResult(True, arena, log=text, inputs=reply["inputs"],
                               outputs=reply["outputs"])
        return BuildResult(False, arena, error=_explain(text, reply["error"]), log=text,
                           failing_op=_failing_op(text))

    def run(self, arena: int, inputs: Sequence[np.ndarray]) -> dict[str, Any]:
        """``inputs``: one array per model input, samples along the first axis."""
        xs = [np.ascontiguousarray(x) for x in inputs]
        pos = self._new_log_section()
        reply = self.request({"cmd": "run", "arena": int(arena), "x": xs},
                             n_samples=len(xs[0]) if xs else 0)
        if not reply["ok"]:
            text = self.log_since(pos)
            raise TflmError("tflite-micro could not run the model: "
                            + _explain(text, reply["error"]), log=text)
        return reply


def _failing_op(text: str) -> str | None:
    m = _MISSING_OP.search(text)
    if m:
        return m.group(1)
    m = _FAILED_NODE.search(text)
    return m.group(1) if m else None


def _explain(text: str, fallback: str) -> str:
    m = _MISSING_OP.search(text)
    if m:
        return f"TFLite Micro has no kernel for operator {m.group(1)}"
    m = _FAILED_NODE.search(text)
    if m:
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        before = [ln for ln in lines if not _FAILED_NODE.search(ln)]
        why = before[-1] if before else ""
        return f"operator {m.group(1)} (node {m.group(2)}) failed to {m.group(3)}" + (
            f": {why}" if why else "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[0] if lines else fallback


def _is_allocation_failure(result: BuildResult) -> bool:
    return result.crashed or "allocate" in result.log.lower() or "arena" in result.log.lower()


def _align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


def check_model(data: bytes, arena_hint: int | None = None,
                proc: TflmProcess | None = None) -> BuildResult:
    """Build ``data`` in TFLM with a generous arena (grown while allocation is the problem)."""
    arena = _align(max(arena_hint or 0, 64 * 1024, 4 * len(data)))
    own = proc is None
    proc = proc or TflmProcess(data)
    try:
        while True:
            result = proc.build(arena)
            if result.ok or not _is_allocation_failure(result) or result.failing_op:
                return result
            if arena >= MAX_ARENA:
                return result
            arena = min(arena * 4, MAX_ARENA)
    finally:
        if own:
            proc.close()


@dataclass
class ArenaMeasurement:
    bytes: int  # smallest arena (multiple of 16) that builds and runs the model
    largest_failing: int  # largest probed size that failed (bytes - 16 when exact)
    probes: int
    crashes: int
    seconds: float


def measure_arena(data: bytes, *, progress: Progress | None = None, cancel: Any = None,
                  proc: TflmProcess | None = None, upper: int | None = None) -> ArenaMeasurement:
    """The exact minimum tensor arena of ``data`` with tflite-micro on this host.

    Bisects between a failing and a working size in child processes (a too-small arena can
    crash TFLM), down to 16-byte resolution. Raises ``ModelToolsError`` if the model cannot
    be built at any size (unsupported operator).
    """
    t0 = time.perf_counter()
    own = proc is None
    proc = proc or TflmProcess(data)
    probes = 0
    try:
        first = check_model(data, upper, proc)
        probes += 1
        if not first.ok:
            raise ModelToolsError(f"tflite-micro cannot build the model: {first.error}",
                                  "see `tinyops analyze` for the unsupported operator")
        lo, hi = 0, _align(first.arena)  # lo fails (by definition), hi works
        steps = max(1, (hi // ARENA_ALIGN).bit_length())
        while hi - lo > ARENA_ALIGN:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            mid = _align((lo + hi) // 2)
            if mid >= hi:
                mid = hi - ARENA_ALIGN
            result = proc.build(mid)
            probes += 1
            if result.ok:
                hi = mid
            else:
                lo = mid
            if progress:
                progress(min(probes / steps, 0.99), f"arena probe {mid} bytes: "
                         + ("ok" if result.ok else "too small"))
        if progress:
            progress(1.0, f"minimum arena {hi} bytes")
        return ArenaMeasurement(hi, lo, probes, proc.restarts, time.perf_counter() - t0)
    finally:
        if own:
            proc.close()


def run_model(data: bytes, x: np.ndarray | Sequence[np.ndarray], *, arena: int | None = None,
              proc: TflmProcess | None = None, batch: int = 256,
              progress: Progress | None = None, cancel: Any = None) -> list[np.ndarray]:
    """Run raw input tensors (already quantized, one sample per row) through TFLM.

    ``x``: one array ``(N, *input_shape_without_batch)`` per model input (or a single array).
    Returns one array ``(N, *output_shape_without_batch)`` per model output, raw dtype.
    """
    inputs = [x] if isinstance(x, np.ndarray) else list(x)
    n = len(inputs[0])
    own = proc is None
    proc = proc or TflmProcess(data)
    try:
        if arena is None:
            arena = check_model(data, None, proc).arena
        outs: list[list[np.ndarray]] = []
        for start in range(0, n, batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            part = [inp[start:start + batch] for inp in inputs]
            count = len(part[0])
            reply = proc.run(arena, part)
            for j, y in enumerate(reply["y"]):
                if len(outs) <= j:
                    outs.append([])
                outs[j].append(y.reshape((count, *y.shape[2:])) if y.ndim > 1 else y)
            if progress:
                progress(min(start + batch, n) / n, f"TFLM inference {min(start + batch, n)}/{n}")
        return [np.concatenate(o) for o in outs]
    finally:
        if own:
            proc.close()
