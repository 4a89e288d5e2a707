"""Child process that runs the tflite-micro interpreter for ``tflm.py``.

tflite-micro's C++ trusts the model and the arena size: a forged model or a too-small arena
can crash the whole process (SIGSEGV). So it only ever runs here, behind a pipe. The model
is verified again in this process before the interpreter sees it.

Protocol: frames of ``8-byte little-endian length + pickle`` on stdin/stdout, one reply per
request. Requests are dicts with ``cmd``: ``load`` (model bytes), ``build`` (arena size,
invoke once with zeros), ``run`` (arena size, batch of raw input arrays), ``quit``.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback
from typing import Any, BinaryIO


def read_frame(stream: BinaryIO) -> Any:
    head = stream.read(8)
    if len(head) < 8:
        return None
    (size,) = struct.unpack("<Q", head)
    return pickle.loads(stream.read(size))


def write_frame(stream: BinaryIO, obj: Any) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack("<Q", len(payload)) + payload)
    stream.flush()


def _details(getter, count: int) -> list[dict]:
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

    def load(self, req: dict) -> dict:
        from model_tools.verify import verify_tflite

        info = verify_tflite(req["model"])
        self.model = bytes(req["model"])
        self.n_in, self.n_out = len(info.main.inputs), len(info.main.outputs)
        return {"ok": True}

    def _interpreter(self, arena: int):
        import numpy as np
        from tflite_micro.python.tflite_micro import runtime

        if self.model is None:
            raise RuntimeError("no model loaded")
        interp = runtime.Interpreter.from_bytes(self.model, arena_size=int(arena))
        ins = _details(interp.get_input_details, self.n_in)
        outs = _details(interp.get_output_details, self.n_out)
        return interp, ins, outs, np

    def build(self, req: dict) -> dict:
        interp, ins, outs, np = self._interpreter(req["arena"])
        for i, spec in enumerate(ins):
            interp.set_input(np.zeros(spec["shape"], dtype=spec["dtype"]), i)
        interp.invoke()
        return {"ok": True, "inputs": ins, "outputs": outs}

    def run(self, req: dict) -> dict:
        interp, ins, outs, np = self._interpreter(req["arena"])
        results: list[list] = [[] for _ in outs]
        for sample in req["x"]:  # one list of input arrays per sample
            for i, arr in enumerate(sample):
                interp.set_input(np.asarray(arr, dtype=ins[i]["dtype"]).reshape(ins[i]["shape"]), i)
            interp.invoke()
            for j in range(len(outs)):
                results[j].append(np.array(interp.get_output(j), copy=True))
        return {"ok": True, "inputs": ins, "outputs": outs,
                "y": [np.stack(r) if r else None for r in results]}


def main() -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the reply pipe
    worker = Worker()
    while True:
        req = read_frame(stdin)
        if req is None or req.get("cmd") == "quit":
            return 0
        try:
            reply = getattr(worker, req["cmd"])(req)
        except Exception as exc:  # reported to the parent, which owns the error message
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                     "exit_code": getattr(exc, "exit_code", None),
                     "hint": getattr(exc, "hint", None),
                     "trace": traceback.format_exc(limit=3)}
        sys.stderr.flush()
        write_frame(stdout, reply)


if __name__ == "__main__":
    sys.exit(main())
