"""TFLite's and TFLM's own verdicts on a model, from a child process (forged models can crash
C++ interpreters; a crash is a verdict, not a dead test run).

``Oracle.tflite(data)``: does ``tf.lite.Interpreter`` construct (its FlatBuffer verifier and
``InterpreterBuilder`` checks) and allocate the model? ``Oracle.tflm(data)``: does the
tflite-micro interpreter build the model and invoke it once? Each returns ``(ok, message)``.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

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

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.close()
            proc.wait(timeout=30)
            proc.stdout.close()
