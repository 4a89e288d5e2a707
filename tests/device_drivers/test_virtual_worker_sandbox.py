"""The virtual board contains its interpreter child: data-only replies, checked, limits.

The hostile-reply tests run a stand-in child (``WorkerProcess(command=...)``) that answers
with bytes chosen by the test, so they need neither an interpreter nor a real exploit.
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
from pathlib import Path

import pytest
from pickle_marker import evil_reply

from device_drivers.virtual import worker_wire
from device_drivers.virtual.model import ModelError, WorkerLimits, WorkerProcess
from tinyops_base import wire

SPEC = {"name": "x", "dtype": "int8", "shape": [1, 3], "scale": 0.5, "zero_point": -1}
GOOD_LOAD = {"ok": True, "inputs": [SPEC], "outputs": [SPEC], "arena_used": 2048,
             "backend": "fake"}


# The stand-in child: says ready, then answers "load" (and, in mode "infer", first a good
# load, then "infer") with the bytes of the file in argv[2].
_FAKE = r"""
import json, sys
from tinyops_base import wire
from tinyops_base.wire import stream_reader

read = stream_reader(sys.stdin.buffer)

mode, path, good = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
out = sys.stdout.buffer
out.write(wire.encode({"ready": True, "backend": "fake"})); out.flush()
try:
    while True:
        req = wire.read_message(read)
        if mode == "infer" and req["op"] == "load":
            out.write(wire.encode(good))
        else:
            out.write(open(path, "rb").read())
        out.flush()
except EOFError:
    pass
"""


def _frame(header: bytes, size: int | None = None) -> bytes:
    return struct.pack("<4sI", wire.MAGIC, len(header) if size is None else size) + header


def _hostile(marker: Path) -> dict[str, tuple[str, bytes]]:
    evil = evil_reply(marker)
    return {
        "old pickle frame": ("load", struct.pack("!I", len(evil)) + evil),
        "pickle after the magic": ("load", _frame(evil)),
        "oversized header": ("load", _frame(b"{}", size=wire.MAX_HEADER + 1)),
        "oversized buffer": ("load", _frame(json.dumps(
            {"ok": True, "x": {"_bytes": 0},
             "_buffers": [{"dtype": "uint8", "shape": [worker_wire.MAX_REPLY + 1]}]}).encode())),
        "spec with an extra key": ("load", wire.encode(
            dict(GOOD_LOAD, inputs=[dict(SPEC, __reduce__="os.system")]))),
        "spec with a text shape": ("load", wire.encode(
            dict(GOOD_LOAD, outputs=[dict(SPEC, shape="1,3")]))),
        "arena as text": ("load", wire.encode(dict(GOOD_LOAD, arena_used="2048"))),
        "output of the wrong size": ("infer", wire.encode(
            {"ok": True, "output": b"\x00" * 4, "latency_us": 10})),
        "output as an array of floats": ("infer", wire.encode(
            {"ok": True, "output": [1.0, 2.0, 3.0], "latency_us": 10})),
        "latency as text": ("infer", wire.encode(
            {"ok": True, "output": b"\x00" * 3, "latency_us": "10"})),
        "error with extra keys": ("infer", wire.encode(
            {"ok": False, "code": "BAD_MODEL", "message": "m", "needed": None, "x": 1})),
    }


def _fake(mode: str, reply: Path) -> WorkerProcess:
    return WorkerProcess(limits=WorkerLimits(0, 0, 0), command=[
        sys.executable, "-c", _FAKE, mode, str(reply), json.dumps(GOOD_LOAD)])


def test_the_marker_really_detects_an_executed_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickle.loads(evil_reply(marker))  # what the board used to do with a reply
    assert marker.exists()


def test_the_stand_in_child_answers_a_good_load_and_infer(tmp_path: Path) -> None:
    """The stand-in is faithful: a well-formed reply is accepted (so the refusals below
    are about the replies, not the set-up)."""
    reply = tmp_path / "reply.bin"
    reply.write_bytes(wire.encode({"ok": True, "output": b"\x01\x02\x03", "latency_us": 7}))
    worker = _fake("infer", reply)
    try:
        loaded = worker.call({"op": "load", "model": b"m", "arena": 1}, 30,
                             worker_wire.check_load)
        assert loaded["outputs"][0]["shape"] == [1, 3] and worker.backend == "fake"
        out = worker.call({"op": "infer", "input": b"\x00" * 3}, 30,
                          lambda r: worker_wire.check_infer(r, SPEC))
        assert out == {"ok": True, "output": b"\x01\x02\x03", "latency_us": 7}
    finally:
        worker.close()


@pytest.mark.parametrize("case", list(_hostile(Path("unused"))))
def test_a_hostile_reply_runs_nothing_and_stops_the_child(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    op, data = _hostile(marker)[case]
    reply = tmp_path / "reply.bin"
    reply.write_bytes(data)
    worker = _fake(op, reply)
    try:
        if op == "infer":
            worker.call({"op": "load", "model": b"m", "arena": 1}, 30, worker_wire.check_load)
            request, check = {"op": "infer", "input": b"\x00" * 3}, (
                lambda r: worker_wire.check_infer(r, SPEC))
        else:
            request, check = {"op": "load", "model": b"m", "arena": 1}, worker_wire.check_load
        with pytest.raises(ModelError) as err:
            worker.call(request, 30, check)
        assert err.value.code == "BAD_MODEL"
        assert "sent an invalid reply and was stopped" in str(err.value)
        assert not worker.alive()
    finally:
        worker.close()
    assert not marker.exists()


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="needs Linux /proc")
def test_the_real_child_runs_under_the_limits_it_was_given() -> None:
    limits = WorkerLimits(address_space=6 << 30, cpu_s=3600, file_size=32 << 20)
    worker = WorkerProcess(limits=limits)
    try:
        worker.wait_ready()
        table = Path(f"/proc/{worker.pid}/limits").read_text()
    finally:
        worker.close()
    rows = {line[:26].strip(): line[26:].split() for line in table.splitlines()[1:]}
    assert rows["Max address space"][:2] == [str(6 << 30)] * 2
    assert rows["Max file size"][:2] == [str(32 << 20)] * 2
    assert rows["Max cpu time"][:2] == ["3600", "3605"]
