"""Child process that runs the tflite-micro interpreter for ``tflm.py``.

tflite-micro's C++ trusts the model and the arena size: a forged model or a too-small arena
can crash the whole process (SIGSEGV), and a model crafted to exploit it could run code here.
So it only ever runs in this process, behind a pipe, under resource limits, and the parent
reads its replies as data only (:mod:`model_tools._tflm_wire`: JSON headers plus raw
buffers, never pickle). The model is verified again here before the interpreter sees it.

Start-up: ``python -m model_tools._tflm_worker [--max-address-space B] [--max-cpu-s S]
[--max-file-size B]`` sets ``RLIMIT_AS``, ``RLIMIT_CPU`` and ``RLIMIT_FSIZE`` (0: unlimited)
before it imports anything heavy or reads a request. The protocol owns the original stdout;
everything else written to fd 1 or 2 (Python, or TFLM's C++ ``DebugLog``) goes to stderr,
which the parent captures as the runtime's log.

Requests (one reply each) are objects with ``cmd``: ``load`` (model bytes), ``build`` (arena
size, invoke once with zeros), ``run`` (arena size, ``x``: one array per model input, samples
along the first axis), ``quit``.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Any

from tinyops_base.limits import set_limits

MAX_REQUEST = 1 << 31  # requests come from the parent; a model and a batch of inputs
COMMANDS = ("load", "build", "run")


def _details(getter: Any, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        d = getter(i)
        q = d["quantization_parameters"]
        out.append({"dtype": str(d["dtype"].__name__), "shape": [int(s) for s in d["shape"]],
                    "scales": [float(s) for s in q["scales"]],
                    "zero_points": [int(z) for z in q["zero_points"]]})
    return out


class Worker:
    def __init__(self) -> None:
        self.model: bytes | None = None
        self.n_in = self.n_out = 0

    def load(self, req: dict[str, Any]) -> dict[str, Any]:
        from model_tools.verify import verify_tflite

        info = verify_tflite(req["model"])
        self.model = bytes(req["model"])
        self.n_in, self.n_out = len(info.main.inputs), len(info.main.outputs)
        return {"ok": True}

    def _interpreter(self, arena: int) -> tuple[Any, list[dict[str, Any]], list[dict[str, Any]]]:
        from tflite_micro.python.tflite_micro import runtime

        if self.model is None:
            raise RuntimeError("no model loaded")
        interp = runtime.Interpreter.from_bytes(self.model, arena_size=int(arena))
        ins = _details(interp.get_input_details, self.n_in)
        outs = _details(interp.get_output_details, self.n_out)
        return interp, ins, outs

    def build(self, req: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        interp, ins, outs = self._interpreter(req["arena"])
        for i, spec in enumerate(ins):
            interp.set_input(np.zeros(spec["shape"], dtype=spec["dtype"]), i)
        interp.invoke()
        return {"ok": True, "inputs": ins, "outputs": outs}

    def run(self, req: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        interp, ins, outs = self._interpreter(req["arena"])
        xs = req["x"]
        n = len(xs[0]) if xs else 0
        results: list[list[Any]] = [[] for _ in outs]
        for s in range(n):
            for i, arr in enumerate(xs):
                interp.set_input(np.asarray(arr[s], dtype=ins[i]["dtype"])
                                 .reshape(ins[i]["shape"]), i)
            interp.invoke()
            for j in range(len(outs)):
                results[j].append(np.array(interp.get_output(j), copy=True))
        return {"ok": True, "inputs": ins, "outputs": outs,
                "y": [np.stack(r) if r else None for r in results]}


def _flush_logs() -> None:
    """Push what Python and C stdio buffered to the log before the reply goes out."""
    import ctypes

    sys.stderr.flush()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).fflush(None)


def main(argv: list[str] | None = None) -> int:
    set_limits(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stdin = sys.stdin.buffer
    stdout = os.fdopen(os.dup(1), "wb")  # the reply pipe: nothing else may write into it
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from tinyops_base.wire import encode, read_message, stream_reader

    worker = Worker()
    while True:
        try:
            req = read_message(stream_reader(stdin), max_payload=MAX_REQUEST)
        except EOFError:
            return 0
        if req.get("cmd") == "quit":
            return 0
        try:
            if req.get("cmd") not in COMMANDS:
                raise ValueError(f"unknown command {req.get('cmd')!r}")
            reply = getattr(worker, req["cmd"])(req)
        except Exception as exc:  # reported to the parent, which owns the error message
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "exit_code": getattr(exc, "exit_code", None),
                     "hint": getattr(exc, "hint", None),
                     "trace": traceback.format_exc(limit=3)}
        _flush_logs()
        stdout.write(encode(reply))
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
