"""Interpreter worker: runs one ``.tflite`` model in a child process.

The TFLM Python interpreter can crash the whole process (segfault) on a malformed model
or a too-small arena, so the virtual board never builds one in its own process. It
starts ``python -m device_drivers.virtual.worker [limits]`` and talks to it over
stdin/stdout in the data-only format of :mod:`tinyops_base.wire` (JSON header plus raw
buffers; the board checks every reply: :mod:`device_drivers.virtual.worker_wire`). The
models it runs are uploaded by whoever talks to the board, so the child also runs under
resource limits (``--max-address-space``, ``--max-cpu-s``, ``--max-file-size``:
:mod:`tinyops_base.limits`), set before the interpreter is imported. If the child dies, the
board reports an error and keeps the previous model.

Backend: ``tflite_micro`` (the TFLM interpreter); where it is not installed (no wheel for
Windows, macOS, Linux on Arm), LiteRT's interpreter (``ai-edge-litert``; TensorFlow's
``tf.lite`` only where LiteRT is missing too), and the arena use is then an estimate.
``TINYOPS_SIM_BACKEND=litert`` (or ``tflite``) forces the fallback.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import re
import sys
import tempfile
import time
from typing import Any, BinaryIO

import numpy as np

from tinyops_base.limits import set_limits
from tinyops_base.wire import encode, read_message, stream_reader

PROBE_ARENA = 32 * 1024 * 1024
"""Arena for the first, measuring allocation: large enough that TFLM does not crash."""
MAX_REQUEST = 1 << 30
"""Requests come from the board (a model, an input tensor)."""
MAX_TEXT = 4000
"""Error messages are cut to this length (the board refuses longer text)."""


def write_message(stream: BinaryIO, message: dict[str, Any]) -> None:
    stream.write(encode(message))
    stream.flush()


def _spec(details: dict[str, Any], name: str) -> dict[str, Any]:
    quant = details.get("quantization_parameters") or {}
    scales = list(quant.get("scales", []))
    zeros = list(quant.get("zero_points", []))
    if not scales and "quantization" in details:  # tf.lite's per-tensor tuple
        scale, zero = details["quantization"]
        scales, zeros = ([scale], [zero]) if scale else ([], [])
    return {
        "name": name,
        "dtype": np.dtype(details["dtype"]).name,
        "shape": [int(d) for d in details["shape"]],
        "scale": float(scales[0]) if scales else 0.0,
        "zero_point": int(zeros[0]) if zeros else 0,
    }


class LoadFailed(Exception):
    def __init__(self, code: str, message: str, needed: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.needed = needed


class TflmModel:
    backend = "tflite-micro"

    def __init__(self, model: bytes, arena: int) -> None:
        from tflite_micro.python.tflite_micro import runtime

        if model[4:8] != b"TFL3":
            raise LoadFailed("BAD_MODEL", "not a TFLite FlatBuffer (no TFL3 identifier)")
        try:
            parsed = runtime.convert_bytearray_to_object(bytearray(model))
            graph = parsed.subgraphs[0]
            names = [_name(graph.tensors[i].name) for i in graph.inputs]
            out_names = [_name(graph.tensors[i].name) for i in graph.outputs]
        except Exception as exc:
            raise LoadFailed("BAD_MODEL", f"the FlatBuffer does not parse: {exc}") from None
        try:  # measure first with a generous arena: a too-small one may segfault TFLM
            probe = runtime.Interpreter.from_bytes(model, arena_size=max(arena, PROBE_ARENA))
        except Exception as exc:
            raise LoadFailed("BAD_MODEL", f"the interpreter cannot build it: {exc}") from None
        self.inputs = [_spec(probe.get_input_details(i), n) for i, n in enumerate(names)]
        self.outputs = [_spec(probe.get_output_details(i), n) for i, n in enumerate(out_names)]
        self._interp = probe
        self.invoke(bytes(_nbytes(self.inputs[0])))
        needed = _arena_used(probe)
        if needed > arena:
            raise LoadFailed("ARENA_TOO_SMALL",
                             f"the model needs {needed} B of arena, the board has {arena} B",
                             needed)
        try:  # now the real thing, in the board's arena
            self._interp = runtime.Interpreter.from_bytes(model, arena_size=arena)
        except Exception as exc:
            raise LoadFailed("ARENA_TOO_SMALL", f"allocation in {arena} B failed: {exc}",
                             needed) from None
        self.invoke(bytes(_nbytes(self.inputs[0])))
        self.arena_used = _arena_used(self._interp) or needed

    def invoke(self, raw: bytes) -> tuple[bytes, int]:
        spec = self.inputs[0]
        x = np.frombuffer(raw, dtype=spec["dtype"]).reshape(spec["shape"])
        start = time.perf_counter_ns()
        self._interp.set_input(x, 0)
        self._interp.invoke()
        out = self._interp.get_output(0)
        elapsed = time.perf_counter_ns() - start
        return np.ascontiguousarray(out).tobytes(), max(1, elapsed // 1000)


def _host_interpreter(model: bytes) -> Any:
    """LiteRT's interpreter (TensorFlow's where LiteRT is not installed), in this child."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf  # last resort: TensorFlow's copy of the same interpreter

        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model)


def host_backend_name() -> str | None:
    """What :class:`HostModel` runs on here: ``litert``, ``tf.lite``, or None (neither)."""
    for module, name in (("ai_edge_litert", "litert"), ("tensorflow", "tf.lite")):
        try:
            if importlib.util.find_spec(module) is not None:
                return name
        except (ImportError, ValueError):
            continue
    return None


def backend_name() -> str | None:
    """The interpreter the worker will use (without importing it): ``tflite-micro``,
    ``litert``, ``tf.lite``, or None when no interpreter is installed."""
    chosen = _backend(load=False)
    if chosen is HostModel and HostModel.backend == "none":
        return None
    return chosen.backend


class HostModel:
    backend = host_backend_name() or "none"

    def __init__(self, model: bytes, arena: int) -> None:
        if HostModel.backend == "none":
            raise LoadFailed("BAD_MODEL", "no interpreter on this system: neither tflite-micro "
                             "nor LiteRT (ai-edge-litert) is installed")
        try:
            interp = _host_interpreter(model)
            interp.allocate_tensors()
        except Exception as exc:
            raise LoadFailed("BAD_MODEL", f"the interpreter cannot build it: {exc}") from None
        self._interp = interp
        self._in = interp.get_input_details()
        self._out = interp.get_output_details()
        self.inputs = [_spec(d, d["name"]) for d in self._in]
        self.outputs = [_spec(d, d["name"]) for d in self._out]
        self.arena_used = _arena_estimate(interp)
        if self.arena_used > arena:
            raise LoadFailed("ARENA_TOO_SMALL", f"the model needs about {self.arena_used} B "
                             f"of arena, the board has {arena} B", self.arena_used)

    def invoke(self, raw: bytes) -> tuple[bytes, int]:
        spec = self.inputs[0]
        x = np.frombuffer(raw, dtype=spec["dtype"]).reshape(spec["shape"])
        start = time.perf_counter_ns()
        self._interp.set_tensor(self._in[0]["index"], x)
        self._interp.invoke()
        out = self._interp.get_tensor(self._out[0]["index"])
        elapsed = time.perf_counter_ns() - start
        return np.ascontiguousarray(out).tobytes(), max(1, elapsed // 1000)


ESTIMATE_PER_OP = 64
"""Arena bytes per operator added to the activations in the estimate (TFLM's node and
tensor bookkeeping; on the bundled example the estimate is within 10 % of TFLM's figure)."""


def _arena_estimate(interp: Any) -> int:
    """Without TFLM: every activation tensor (model inputs, operator outputs; no constants,
    no memory reuse) plus per-operator bookkeeping: an upper estimate of TFLM's arena."""
    nbytes = {d["index"]: int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize
              for d in interp.get_tensor_details() if len(d["shape"])}
    ops = interp._get_ops_details()
    live = {d["index"] for d in interp.get_input_details()}
    for op in ops:
        live.update(i for i in op["outputs"] if i >= 0)
    return max(1024, sum(nbytes.get(i, 0) for i in live) + ESTIMATE_PER_OP * len(ops))


def _name(raw: bytes | str | None) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return raw or ""


def _nbytes(spec: dict[str, Any]) -> int:
    return int(np.prod(spec["shape"])) * np.dtype(spec["dtype"]).itemsize


_TOTAL = re.compile(rb"Arena allocation total (\d+) bytes")


def _arena_used(interp: Any) -> int:
    """TFLM's recording allocator prints its totals to stderr: capture and parse them."""
    libc = ctypes.CDLL(None)
    with tempfile.TemporaryFile() as tmp:
        saved = os.dup(2)
        os.dup2(tmp.fileno(), 2)
        try:
            interp.print_allocations()
            libc.fflush(None)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        found = _TOTAL.search(tmp.read())
    return int(found.group(1)) if found else 0


def _backend(load: bool = True) -> type:
    """TFLM where it is installed (``load``: and imports), else the host interpreter."""
    if os.environ.get("TINYOPS_SIM_BACKEND", "").lower() in ("tflite", "litert"):
        return HostModel
    try:
        if load:
            import tflite_micro.python.tflite_micro.runtime  # noqa: F401
        elif importlib.util.find_spec("tflite_micro") is None:
            return HostModel
    except (ImportError, ValueError):
        return HostModel
    return TflmModel


def _failure(code: str, message: str, needed: int | None = None) -> dict[str, Any]:
    return {"ok": False, "code": code, "message": message[:MAX_TEXT],
            "needed": None if needed is None else int(needed)}


def serve(inp: BinaryIO, out: BinaryIO) -> None:
    backend = _backend()
    write_message(out, {"ready": True, "backend": backend.backend})
    model: Any = None
    while True:
        try:
            msg = read_message(stream_reader(inp), max_payload=MAX_REQUEST)
        except EOFError:
            return
        op = msg.get("op")
        if op == "quit":
            return
        try:
            if op == "load":
                model = backend(msg["model"], int(msg["arena"]))
                write_message(out, {"ok": True, "inputs": model.inputs, "outputs": model.outputs,
                                    "arena_used": int(model.arena_used),
                                    "backend": backend.backend})
            elif op == "infer":
                if model is None:
                    raise LoadFailed("NO_MODEL", "no model loaded")
                if len(msg["input"]) != _nbytes(model.inputs[0]):
                    raise LoadFailed("BAD_INPUT", f"input is {len(msg['input'])} B, the model "
                                     f"takes {_nbytes(model.inputs[0])} B")
                output, latency = model.invoke(msg["input"])
                write_message(out, {"ok": True, "output": output, "latency_us": int(latency)})
            else:
                write_message(out, _failure("BAD_REQUEST", str(op)))
        except LoadFailed as exc:
            write_message(out, _failure(exc.code, str(exc), exc.needed))
        except Exception as exc:
            write_message(out, _failure("BAD_MODEL", f"{type(exc).__name__}: {exc}"))


def main(argv: list[str] | None = None) -> None:
    set_limits(sys.argv[1:] if argv is None else argv)
    # The protocol owns the original stdout; anything printed (by Python or C) goes to stderr.
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        serve(sys.stdin.buffer, proto_out)


if __name__ == "__main__":
    main()
