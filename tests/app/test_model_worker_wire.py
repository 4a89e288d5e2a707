"""The model worker's channel: data only (``tinyops_base.wire``), checked, size-limited,
under resource limits, and TensorFlow's log kept out of the user's terminal.

A hostile child (a user's Keras file can run code in TensorFlow) is played by a script
that writes a crafted reply: the parent must refuse it without executing anything.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pickle_marker import evil_reply

from app.model_wire import checked, pack, unpack
from app.model_worker import LAYERS_JOB, ModelJobError, ModelWorker, ModelWorkerLimits
from device_drivers import paths
from tinyops_base import wire

EXAMPLE = paths.resources_dir() / "examples" / "vibration"
# a child that sends the bytes of argv[1] as its reply, then waits for the parent to go
FAKE_CHILD = ("import sys, time; sys.stdout.buffer.write(open(sys.argv[1], 'rb').read()); "
              "sys.stdout.flush(); sys.stdin.buffer.read()")


def _hostile(tmp_path: Path, reply: bytes, **kw: object) -> ModelWorker:
    payload = tmp_path / "reply.bin"
    payload.write_bytes(reply)
    return ModelWorker(idle_s=0, command=[sys.executable, "-c", FAKE_CHILD, str(payload)],
                       **kw)  # type: ignore[arg-type]


def _refused(worker: ModelWorker, match: str) -> None:
    with pytest.raises(ModelJobError, match=match) as info:
        worker.call(LAYERS_JOB, "model.tflite")
    assert "invalid reply" in info.value.message and info.value.hint
    assert worker.pid is None  # the child that sent it was stopped


def test_a_pickle_reply_is_refused_and_never_executed(tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    _refused(_hostile(tmp_path, evil_reply(marker)), "bad frame start")
    assert not marker.exists()


def test_an_oversize_reply_is_refused_before_it_is_read(tmp_path: Path) -> None:
    header = json.dumps({"kind": "ok", "job": 1, "result": {"_nd": 0},
                         "_buffers": [{"dtype": "uint8", "shape": [1 << 30]}]}).encode()
    reply = struct.pack("<4sI", wire.MAGIC, len(header)) + header  # 1 GiB promised, none sent
    _refused(_hostile(tmp_path, reply, max_reply=1 << 20), "exceed the limit")
    huge = struct.pack("<4sI", wire.MAGIC, wire.MAX_HEADER + 1)
    _refused(_hostile(tmp_path, huge), "exceeds the limit")


@pytest.mark.parametrize(("reply", "match"), [
    ({"kind": "progress", "job": 1, "fraction": "half", "message": "x"}, "fraction"),
    ({"kind": "progress", "job": 1, "fraction": 7.0, "message": "x"}, "not in 0..1"),
    ({"kind": "error", "job": 1, "message": "m", "hint": 3, "detail": "", "cancelled": False,
      "expected": True}, "hint"),
    ({"kind": "ok", "job": 2, "result": 1}, "job 2"),
    ({"kind": "exec", "job": 1}, "unknown reply kind"),
    ({"kind": "ok", "job": 1, "result": {"_float": "__import__('os')"}}, "bad float tag"),
])
def test_a_reply_of_the_wrong_shape_is_refused(tmp_path: Path, reply: dict,
                                               match: str) -> None:
    _refused(_hostile(tmp_path, wire.encode(reply)), match)


def test_values_json_cannot_carry_survive_the_round_trip() -> None:
    value = {"inf": math.inf, "nan": math.nan, "by_index": {3: "conv", 7: "fc"},
             "pair": (1, 2.5), "arr": np.arange(6, dtype=np.float32).reshape(2, 3),
             "scalar": np.float32(0.5), "path": Path("/tmp/m.tflite")}
    back = unpack(wire.read_message(wire.stream_reader(_Stream(wire.encode(pack(value))))))
    assert back["inf"] == math.inf and math.isnan(back["nan"])
    assert back["by_index"] == {3: "conv", 7: "fc"} and back["pair"] == [1, 2.5]
    assert np.array_equal(back["arr"], value["arr"]) and back["scalar"] == 0.5
    assert back["path"] == "/tmp/m.tflite"
    assert checked({"kind": "ok", "job": 4, "result": {"_float": "-inf"}}, 4)["result"] == \
        -math.inf


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int) -> bytes:
        out, self.data = self.data[:n], self.data[n:]
        return out


def test_a_real_job_runs_under_the_limits() -> None:
    limits = ModelWorkerLimits(address_space=6 << 30, cpu_s=1234, file_size=512 << 20)
    worker = ModelWorker(idle_s=0, limits=limits)
    try:
        report = worker.call(LAYERS_JOB, str(EXAMPLE / "model_int8.tflite"))
        text = Path(f"/proc/{worker.pid}/limits").read_text()
    finally:
        worker.stop()
    assert report["layers"] and isinstance(report["layers"][0]["index"], int)
    rows = {line[:26].strip(): line[26:].split() for line in text.splitlines()[1:]}
    assert rows["Max address space"][0] == str(6 << 30)
    assert rows["Max cpu time"][0] == "1234"
    assert rows["Max file size"][0] == str(512 << 20)


def test_tensorflows_log_stays_out_of_the_terminal(tmp_path: Path) -> None:
    script = ("from app.model_worker import ModelWorker\n"
              "w = ModelWorker(idle_s=0)\n"
              "try:\n"
              f"    r = w.call('app.gui.pages.model_jobs:analyze_job', "
              f"{str(EXAMPLE / 'model.keras')!r}, None)\n"
              "    print('ops', len(r['ops']))\n"
              "    print('log', len(w.log_tail().splitlines()))\n"
              "finally:\n"
              "    w.stop()\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "ops" in done.stdout
    assert done.stderr.strip() == "", done.stderr  # TensorFlow loaded, and said nothing here
