"""TFLite's and TFLM's own verdicts on a model, from a child process (forged models can crash
C++ interpreters; a crash is a verdict, not a dead test run).

``Oracle.tflite(data)``: does ``tf.lite.Interpreter`` construct (its FlatBuffer verifier and
``InterpreterBuilder`` checks) and allocate the model? ``Oracle.tflm(data)``: does the
tflite-micro interpreter build the model and invoke it once? Each returns ``(ok, message)``.
``Oracle.tflm_arena_used(data, arena)``: TFLM's own arena figure (its recording allocator's
"Arena allocation total") after building and invoking in exactly ``arena`` bytes.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import flatbuffers

from model_tools.fb_schema import generated_module

_CHILD = r"""
import json, os, struct, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
out = os.fdopen(os.dup(1), "wb")
os.dup2(2, 1)
import warnings; warnings.filterwarnings("ignore")
tf = None
while True:
    head = sys.stdin.buffer.read(5)
    if len(head) < 5:
        break
    kind, size = head[:1], struct.unpack("<I", head[1:])[0]
    data = sys.stdin.buffer.read(size)
    try:
        if kind == b"A":  # 8-byte arena size, then the model: build, invoke, report usage
            import ctypes, re, tempfile
            from tflite_micro.python.tflite_micro import runtime
            arena, data = struct.unpack("<Q", data[:8])[0], data[8:]
            it = runtime.Interpreter.from_bytes(data, arena_size=arena)
            it.invoke()
            with tempfile.TemporaryFile() as tmp:
                saved = os.dup(2)
                os.dup2(tmp.fileno(), 2)
                try:
                    it.print_allocations()
                    ctypes.CDLL(None).fflush(None)
                finally:
                    os.dup2(saved, 2)
                    os.close(saved)
                tmp.seek(0)
                found = re.search(rb"Arena allocation total (\d+) bytes", tmp.read())
            reply = {"ok": True, "msg": found.group(1).decode() if found else ""}
            out.write((json.dumps(reply) + "\n").encode()); out.flush()
            continue
        if kind == b"L":
            if tf is None:
                import tensorflow as tf
            it = tf.lite.Interpreter(model_content=data)
            it.allocate_tensors()
        else:
            from tflite_micro.python.tflite_micro import runtime
            it = runtime.Interpreter.from_bytes(data, arena_size=4 * 1024 * 1024)
            it.invoke()
        reply = {"ok": True, "msg": ""}
    except Exception as exc:
        reply = {"ok": False, "msg": " ".join(str(exc).split())[:300]}
    out.write((json.dumps(reply) + "\n").encode()); out.flush()
"""


class Oracle:
    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def _ask(self, kind: bytes, data: bytes) -> tuple[bool, str]:
        if self._proc is None:
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
            self._proc = subprocess.Popen([sys.executable, "-c", _CHILD], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          env=env)
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(kind + struct.pack("<I", len(data)) + data)
            proc.stdin.flush()
            line = proc.stdout.readline()
        except BrokenPipeError:
            line = b""
        if not line:
            code = proc.wait(timeout=30)
            self._proc = None
            return False, f"crashed (exit {code})"
        reply = json.loads(line)
        return bool(reply["ok"]), str(reply["msg"])

    def tflite(self, data: bytes) -> tuple[bool, str]:
        return self._ask(b"L", data)

    def tflm(self, data: bytes) -> tuple[bool, str]:
        return self._ask(b"M", data)

    def tflm_arena_used(self, data: bytes, arena: int) -> tuple[bool, int | None, str]:
        """Build and invoke in exactly ``arena`` bytes; TFLM's recording allocator's total."""
        ok, msg = self._ask(b"A", struct.pack("<Q", arena) + data)
        return ok, int(msg) if ok and msg.isdigit() else None, msg

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()


def with_bias_axis(data: bytes, qdim: int) -> tuple[bytes, list[int]]:
    """``data`` with ``quantized_dimension`` = ``qdim`` on every per-channel 1-D tensor (the
    biases), as in TFLM's person-detection model; returns the model and the tensors changed."""
    gen = generated_module()
    m = gen.ModelT.InitFromObj(gen.Model.GetRootAs(data, 0))
    changed = []
    for i, t in enumerate(m.subgraphs[0].tensors):
        q = t.quantization
        if q is not None and q.scale is not None and len(q.scale) > 1 and len(t.shape) == 1:
            q.quantizedDimension = qdim
            changed.append(i)
    b = flatbuffers.Builder(len(data) + 4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), changed
