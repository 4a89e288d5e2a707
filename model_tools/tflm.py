"""Run models in the tflite-micro interpreter, safely, in a child process.

The TFLM Python runtime crashes the process on a too-small arena or a forged model, so every
call goes to ``_tflm_worker`` over a pipe. A crash becomes a result (``crashed=True``) and the
worker is restarted; it never takes the caller down.

- ``check_model``: can TFLM build and run the model? If not, which operator fails and why.
- ``measure_arena``: the exact minimum tensor arena (bisection, 16-byte resolution).
- ``run_model``: raw int8/float tensors in, raw output tensors out, as on the device.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from model_tools._tflm_worker import write_frame
from model_tools.errors import (
    Cancelled,
    InvalidModelError,
    ModelToolsError,
    RuntimeUnavailable,
)

log = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
ARENA_ALIGN = 16
MAX_ARENA = 256 * 1024 * 1024
_MISSING_OP = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
_FAILED_NODE = re.compile(r"Node (\w+) \(number (\d+)f?\) failed to (prepare|invoke|init)")
_UNSUPPORTED = re.compile(r"(\w+) not supported|Unsupported|not supported", re.I)


def tflm_available() -> bool:
    """Whether the tflite-micro Python runtime is installed (Linux x86-64 wheels only)."""
    return importlib.util.find_spec("tflite_micro") is not None


class WorkerCrashed(ModelToolsError):
    """The interpreter process died (e.g. SIGSEGV) while handling a request."""

    def __init__(self, returncode: int | None, log_tail: str) -> None:
        name = _signal_name(returncode)
        super().__init__(f"tflite-micro crashed ({name})")
        self.returncode = returncode
        self.log_tail = log_tail


def _signal_name(code: int | None) -> str:
    if code is None:
        return "no answer"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"{signal.Signals(-code).name}, exit {128 - code}"
    return f"exit {code}"


@dataclass
class BuildResult:
    ok: bool
    arena: int
    crashed: bool = False
    error: str | None = None
    failing_op: str | None = None
    log: str = ""
    inputs: list[dict] = field(default_factory=list)
    outputs: list[dict] = field(default_factory=list)


class TflmProcess:
    """One worker process holding one verified model; restarts itself after a crash."""

    def __init__(self, model: bytes, timeout_s: float = 120.0) -> None:
        if not tflm_available():
            raise RuntimeUnavailable("the tflite-micro runtime is not installed",
                                     "install the tflite-micro package (Linux x86-64)")
        self.model = bytes(model)
        self.timeout_s = timeout_s
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in __exit__
        self.restarts = 0

    # -- process management -----------------------------------------------------------------
    def _start(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "model_tools._tflm_worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=env)
        reply = self._exchange({"cmd": "load", "model": self.model})
        if not reply.get("ok"):
            self.close()
            if reply.get("exit_code") == 2:
                raise InvalidModelError(reply["error"].split(": ", 1)[-1], reply.get("hint"))
            raise ModelToolsError(f"tflite-micro could not load the model: {reply['error']}")

    def _read_exact(self, n: int, deadline: float) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def _exchange(self, req: dict) -> dict:
        import pickle

        assert self._proc is not None and self._proc.stdin is not None
        deadline = time.monotonic() + self.timeout_s
        try:
            write_frame(self._proc.stdin, req)
            (size,) = struct.unpack("<Q", self._read_exact(8, deadline))
            return pickle.loads(self._read_exact(size, deadline))
        except (BrokenPipeError, EOFError, TimeoutError, OSError):
            proc = self._proc
            with contextlib.suppress(Exception):
                proc.kill()
            code = proc.wait(timeout=10)
            self._proc = None
            raise WorkerCrashed(code, self.log_since(0)[-2000:]) from None

    def request(self, req: dict) -> dict:
        if self._proc is None:
            self._start()
            if self.restarts:
                log.debug("tflite-micro worker restarted (%d)", self.restarts)
        return self._exchange(req)

    def log_since(self, pos: int) -> str:
        self._log.flush()
        self._log.seek(pos)
        text = self._log.read().decode("utf-8", "replace")
        self._log.seek(0, os.SEEK_END)
        return text

    def log_pos(self) -> int:
        self._log.seek(0, os.SEEK_END)
        return self._log.tell()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            with contextlib.suppress(Exception):
                write_frame(proc.stdin, {"cmd": "quit"})
                proc.stdin.close()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()

    def __enter__(self) -> TflmProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._log.close()

    # -- operations ---------------------------------------------------------------------------
    def build(self, arena: int) -> BuildResult:
        """Build the interpreter with ``arena`` bytes and invoke it once on zeros."""
        pos = self.log_pos()
        try:
            reply = self.request({"cmd": "build", "arena": int(arena)})
        except WorkerCrashed as exc:
            self.restarts += 1
            text = self.log_since(pos)
            return BuildResult(False, arena, crashed=True, error=str(exc), log=text,
                               failing_op=_failing_op(text))
        text = self.log_since(pos)
        if reply.get("ok"):
            return BuildResult(True, arena, log=text, inputs=reply["inputs"],
                               outputs=reply["outputs"])
        return BuildResult(False, arena, error=_explain(text, reply["error"]), log=text,
                           failing_op=_failing_op(text))

    def run(self, arena: int, samples: Sequence[Sequence[np.ndarray]]) -> dict:
        pos = self.log_pos()
        reply = self.request({"cmd": "run", "arena": int(arena), "x": list(samples)})
        if not reply.get("ok"):
            raise ModelToolsError(
                "tflite-micro could not run the model: "
                + _explain(self.log_since(pos), reply["error"]))
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
            samples = [[inp[i] for inp in inputs] for i in range(start, min(n, start + batch))]
            reply = proc.run(arena, samples)
            for j, y in enumerate(reply["y"]):
                if len(outs) <= j:
                    outs.append([])
                outs[j].append(y.reshape((len(samples), *y.shape[2:])) if y.ndim > 1 else y)
            if progress:
                progress(min(start + batch, n) / n, f"TFLM inference {min(start + batch, n)}/{n}")
        return [np.concatenate(o) for o in outs]
    finally:
        if own:
            proc.close()
