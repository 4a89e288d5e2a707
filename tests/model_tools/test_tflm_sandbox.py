"""The TFLM sandbox contains its child: data-only replies, limits, bounded logs, no leaks.

The hostile-reply tests run a stand-in worker (``command=``) that answers with bytes chosen
by the test, so they need neither tflite-micro nor a real exploit.
"""

from __future__ import annotations

import gc
import json
import os
import pickle
import struct
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from pickle_marker import evil_reply

from model_tools import _tflm_wire as wire
from model_tools.tflm import (
    MAX_LOG,
    TflmError,
    TflmProcess,
    WorkerLimits,
    WorkerProtocolError,
    check_model,
    run_model,
    tflm_available,
)

needs_tflm = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")
ROOT = Path(__file__).resolve().parents[2]


# A stand-in worker: answers the first request with the bytes in argv[1], then (for the
# "chatty" mode) speaks the real wire format and floods stderr before answering build.
_FAKE = r"""
import sys
from model_tools import _tflm_wire as wire
from tinyops_base.wire import stream_reader

read = stream_reader(sys.stdin.buffer)

mode, arg = sys.argv[1], sys.argv[2]
out = sys.stdout.buffer
try:
    while True:
        req = wire.read_message(read)
        if mode == "silent":  # never answers: blocks until the parent ends it
            sys.stdin.buffer.read()
        elif mode == "raw":
            out.write(open(arg, "rb").read()); out.flush()
        elif req["cmd"] == "load":
            out.write(wire.encode({"ok": True})); out.flush()
        else:
            sys.stderr.write("first line of the runtime log\n" + "x" * int(arg) + "\nlast line\n")
            sys.stderr.flush()
            out.write(wire.encode({"ok": False, "error": "RuntimeError: boom"})); out.flush()
except EOFError:
    pass
"""


def _fake_process(model: bytes, mode: str, arg: str, timeout_s: float = 30) -> TflmProcess:
    return TflmProcess(model, timeout_s=timeout_s,
                       command=[sys.executable, "-c", _FAKE, mode, arg])


def _frame(header: bytes, size: int | None = None) -> bytes:
    return struct.pack("<4sI", wire.MAGIC, len(header) if size is None else size) + header


def _hostile_replies(marker: Path) -> dict[str, bytes]:
    evil = evil_reply(marker)
    return {
        "old pickle frame": struct.pack("<Q", len(evil)) + evil,
        "pickle after the magic": _frame(evil),
        "oversized header": _frame(b"{}", size=wire.MAX_HEADER + 1),
        "garbage header": _frame(b"\xff\xfe not json at all \x00"),
        "object dtype": _frame(json.dumps(
            {"ok": True, "x": {"_nd": 0}, "_buffers": [{"dtype": "object", "shape": [1]}]}
        ).encode()),
        "oversized buffer": _frame(json.dumps(
            {"ok": True, "x": {"_nd": 0},
             "_buffers": [{"dtype": "float64", "shape": [1 << 30, 1 << 10]}]}).encode()),
        "unexpected key": wire.encode({"ok": True, "__reduce__": "os.system"}),
    }


def test_the_marker_really_detects_an_executed_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    pickle.loads(evil_reply(marker))  # what the old parent did with a reply
    assert marker.exists()


@pytest.mark.parametrize("case", list(_hostile_replies(Path("unused"))))
def test_a_hostile_reply_runs_nothing_and_is_a_clear_error(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    reply = tmp_path / "reply.bin"
    reply.write_bytes(_hostile_replies(marker)[case])
    proc = _fake_process(b"model bytes", "raw", str(reply))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        with pytest.raises(WorkerProtocolError) as err, proc:
            proc.build(4096)
        del proc
        gc.collect()
    assert not marker.exists()
    assert "invalid reply" in err.value.message and err.value.hint
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize("case", list(_hostile_replies(Path("unused"))))
def test_the_wire_reader_refuses_hostile_bytes(tmp_path: Path, case: str) -> None:
    marker = tmp_path / "pwned"
    data = _hostile_replies(marker)[case]
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise EOFError
        pos += n
        return data[pos - n:pos]

    with pytest.raises((wire.WireError, EOFError)):
        wire.check_reply("load", wire.read_message(read))
    assert not marker.exists()


def test_the_wire_round_trips_arrays_and_bytes() -> None:
    msg = {"ok": True, "y": [np.arange(6, dtype=np.int8).reshape(2, 3), np.zeros((0, 4))],
           "model": b"\x00\x01TFL3", "n": 3, "s": "text"}
    data = wire.encode(msg)
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        pos += n
        return data[pos - n:pos]

    got = wire.read_message(read)
    assert pos == len(data)
    assert got["model"] == b"\x00\x01TFL3" and got["n"] == 3 and got["s"] == "text"
    assert got["y"][0].dtype == np.int8 and np.array_equal(got["y"][0], msg["y"][0])
    assert got["y"][1].shape == (0, 4)


def test_a_run_reply_of_the_wrong_shape_or_dtype_is_refused() -> None:
    spec = {"dtype": "int8", "shape": [1, 3], "scales": [0.5], "zero_points": [0]}
    good = {"ok": True, "inputs": [spec], "outputs": [spec],
            "y": [np.zeros((4, 1, 3), np.int8)]}
    assert wire.check_reply("run", good, n_inputs=1, n_outputs=1, n_samples=4) is good
    for y in (np.zeros((5, 1, 3), np.int8), np.zeros((4, 1, 3), np.float32), "a string"):
        with pytest.raises(wire.WireError, match="y\\[0\\]"):
            wire.check_reply("run", dict(good, y=[y]), n_samples=4)
    with pytest.raises(wire.WireError, match="outputs"):
        wire.check_reply("build", {"ok": True, "inputs": [spec], "outputs": []},
                         n_inputs=1, n_outputs=1)


def test_the_runtime_log_is_returned_and_bounded(example_tflite: bytes) -> None:
    with _fake_process(example_tflite, "chatty", str(200_000)) as proc:
        result = proc.build(4096)
    assert not result.ok and not result.crashed
    assert result.log.startswith("first line of the runtime log")
    assert result.log.rstrip().endswith("last line")
    assert len(result.log) <= MAX_LOG + 100 and "left out" in result.log
    assert result.error == "first line of the runtime log"


def test_a_worker_that_never_answers_is_stopped_and_reported() -> None:
    with _fake_process(b"model", "silent", "", timeout_s=1.0) as proc:
        result = proc.build(4096)
        assert proc._proc is None  # stopped, not left running
    assert result.crashed and not result.ok
    assert result.error == "tflite-micro crashed (no answer)"


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYOPS_TFLM_MAX_AS_MB", "512")
    monkeypatch.setenv("TINYOPS_TFLM_MAX_CPU_S", "30")
    monkeypatch.delenv("TINYOPS_TFLM_MAX_LOG_MB", raising=False)
    limits = WorkerLimits.from_env()
    assert (limits.address_space, limits.cpu_s) == (512 << 20, 30)
    assert limits.file_size == WorkerLimits().file_size


def _limits_of(pid: int) -> dict[str, str]:
    rows = Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]
    return {row[:26].strip(): row[26:].split()[0] for row in rows}


@needs_tflm
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_worker_runs_under_the_given_limits(example_tflite: bytes) -> None:
    limits = WorkerLimits(address_space=1536 << 20, cpu_s=77, file_size=5 << 20)
    with TflmProcess(example_tflite, limits=limits) as proc:
        assert proc.build(64 * 1024).ok
        got = _limits_of(proc._proc.pid)
    assert got["Max address space"] == str(1536 << 20)
    assert got["Max cpu time"] == "77"
    assert got["Max file size"] == str(5 << 20)


@needs_tflm
def test_too_little_address_space_is_a_contained_failure(example_tflite: bytes) -> None:
    with TflmProcess(example_tflite, limits=WorkerLimits(address_space=48 << 20)) as proc:
        result = proc.build(64 * 1024)
    assert result.crashed and not result.ok
    # the child could not map what it needed (the import of numpy or TFLM failed): its own
    # message is in the log, and the caller only sees a failed build
    assert "MemoryError" in result.log or "failed to map segment" in result.log


@needs_tflm
def test_no_file_or_process_is_left_open_on_any_path(example_tflite: bytes) -> None:
    x = np.zeros((3, 128, 3), np.int8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        assert check_model(example_tflite).ok  # own process, closed by close()
        assert run_model(example_tflite, x)[0].shape == (3, 3)
        with TflmProcess(example_tflite) as proc:  # crash path, then close()
            proc.build(64 * 1024)
            os.kill(proc._proc.pid, 9)
            assert proc.build(64 * 1024).crashed
            assert proc.build(64 * 1024).ok
        with pytest.raises(TflmError):
            run_model(example_tflite, np.zeros((2, 5), np.int8), arena=64 * 1024)
        del proc
        gc.collect()
        leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
        tempfile.TemporaryFile()  # noqa: SIM115 - control: an unclosed file must show up
        gc.collect()
    assert leaks == []
    assert any(issubclass(w.category, ResourceWarning) for w in caught)


@needs_tflm
def test_no_resource_warning_under_dev_mode(example_tflite: bytes, tmp_path: Path) -> None:
    import subprocess

    model = tmp_path / "m.tflite"
    model.write_bytes(example_tflite)
    code = ("import pathlib, numpy as np\nfrom model_tools.tflm import check_model, run_model\n"
            f"data = pathlib.Path({str(model)!r}).read_bytes()\nassert check_model(data).ok\n"
            "run_model(data, np.zeros((2, 128, 3), np.int8))\n")
    result = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning",
                             "-c", code], cwd=ROOT, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ResourceWarning" not in result.stderr
