"""The runtime group (64) of the host build through the real client: load-model (atomic,
sha256-checked, persisted across a reset), model-info, infer, stats, stream and the telemetry
lines, the tensor command, and the protocol's CBOR test vectors byte for byte.

The model runtime here is the test double (model_double.c): it accepts any file with the
TFLite identifier and computes a fixed function, so these tests check the core's protocol,
not TFLM (that is tested in QEMU)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import fw_host
import pytest
from smp import file_management as fsm

from device_drivers.link import DeviceSession
from device_drivers.link.smp_errors import SMPErrorResponse
from device_drivers.protocol import runtime as rt

ROOT = Path(__file__).resolve().parents[2]
MODEL = (ROOT / "resources" / "examples" / "vibration" / "model_int8.tflite").read_bytes()
LABELS = ["normal", "imbalance", "bearing_fault"]
VECTORS = {v["title"]: v for v in json.loads(
    (ROOT / "resources" / "protocol" / "vectors.json").read_text())}


def _expected_output(raw: bytes) -> bytes:
    """What the test double computes: per-axis mean of |x| (int8), minus 128."""
    acc = [0, 0, 0]
    for i, b in enumerate(raw):
        v = b - 256 if b > 127 else b
        acc[i % 3] += 127 if v == -128 else abs(v)
    return bytes((int(a / 128) - 128) & 0xFF for a in acc)


def _refused(dev: DeviceSession, request: object) -> int:
    with pytest.raises(SMPErrorResponse) as err:
        dev.request(request)
    assert err.value.group == rt.GROUP_ID
    return err.value.rc


def _install(dev: DeviceSession, data: bytes, path: str = "/lfs/model-a.tflite") -> None:
    assert dev.upload_file(data, path).verified
    loaded = dev.load_model(path, sha256=hashlib.sha256(data).digest(), labels=LABELS)
    assert loaded.sha256 == hashlib.sha256(data).digest() and loaded.size == len(data)


def test_an_empty_board_answers_with_the_runtime_errors(host_board) -> None:
    with DeviceSession.open(host_board().port) as dev:
        info = dev.model_info()
        assert info is not None and info.loaded is False
        assert info.default_path == "/lfs/model.tflite" and info.arena_size > 0
        assert info.ops == ["ABS", "MEAN"]  # what the (double's) glue registers
        assert _refused(dev, rt.Infer(input=bytes(384))) == rt.RUNTIME_ERR.NO_MODEL
        assert _refused(dev, rt.LoadModel(path="/lfs/none.tflite")) == rt.RUNTIME_ERR.NOT_FOUND
        assert _refused(dev, rt.Tensor(op=0)) == rt.RUNTIME_ERR.NO_MODEL
        stats = dev.stats()
        assert stats.inferences == 0 and stats.arena_used == 0
        assert stats.temp_c is None and stats.vcc_mv is None  # the host port has no sensors
        assert 0.0 <= stats.cpu_load <= 1.0


def test_load_infer_and_a_bad_model_refused_before_and_after_reset(host_board) -> None:
    board = host_board()
    sha = hashlib.sha256(MODEL).digest()
    with DeviceSession.open(board.port) as dev:
        _install(dev, MODEL)
        info = dev.model_info()
        assert (info.loaded, info.path, info.sha256, info.size) == (
            True, "/lfs/model-a.tflite", sha, len(MODEL))
        assert info.labels == LABELS and info.arena_used > 0
        assert info.inputs[0].dtype == "int8" and info.inputs[0].shape == [1, 128, 3]
        raw = os.urandom(384)
        output, latency = dev.infer(raw)
        assert output == _expected_output(raw) and latency > 0
        assert _refused(dev, rt.Infer(input=raw[:100])) == rt.RUNTIME_ERR.BAD_INPUT
        # a wrong digest, a file that is no model, a file too large: refused, model kept
        assert _refused(dev, rt.LoadModel(path="/lfs/model-a.tflite", sha256=bytes(32))) == \
            rt.RUNTIME_ERR.DIGEST_MISMATCH
        assert dev.upload_file(b"not a flatbuffer at all" * 10, "/lfs/model-b.tflite").verified
        assert _refused(dev, rt.LoadModel(path="/lfs/model-b.tflite")) == \
            rt.RUNTIME_ERR.BAD_MODEL
        assert dev.model_info().sha256 == sha
        assert dev.infer(raw)[0] == _expected_output(raw)
        dev.reset()
    board.wait_line("after reset")
    with DeviceSession.open(board.port) as dev:
        info = dev.model_info()
        assert (info.loaded, info.path, info.sha256, info.labels) == (
            True, "/lfs/model-a.tflite", sha, LABELS)
        assert dev.stats().uptime_ms < 60_000
        assert _refused(dev, rt.LoadModel(path="/lfs/model-b.tflite")) == \
            rt.RUNTIME_ERR.BAD_MODEL
        assert dev.model_info().sha256 == sha
        assert dev.infer(raw)[0] == _expected_output(raw)


def test_a_model_file_changed_behind_the_record_is_not_run_after_reset(host_board) -> None:
    board = host_board()
    with DeviceSession.open(board.port) as dev:
        _install(dev, MODEL)
    (board.state / "lfs" / "model-a.tflite").write_bytes(MODEL[:-1] + b"\x00")
    board.stop()
    again = host_board(state=board.state)
    with DeviceSession.open(again.port) as dev:
        assert dev.model_info().loaded is False


def test_the_stream_prints_scores_and_summaries(host_board) -> None:
    board = host_board()
    link = None
    with DeviceSession.open(board.port) as dev:
        _install(dev, MODEL)
    link = fw_host.RawLink(board.port)
    try:
        deadline = time.monotonic() + 10
        raw: list[dict] = []
        while len(raw) < 5 and time.monotonic() < deadline:
            link.receive(timeout_s=0.3)
            raw = [json.loads(x) for x in link.text if x.startswith(b"{")]
        assert len(raw) >= 5
        line = raw[-1]
        assert set(line["scores"]) == set(LABELS)
        assert abs(sum(line["scores"].values()) - 1.0) < 0.01
        assert line["latency_us"] > 0 and line["arena_used"] > 0 and "heap_free" in line
        assert "temp_c" not in line and "vcc_mv" not in line  # absent, not invented
        assert line["state"] in LABELS and raw[-1]["t"] > raw[0]["t"]
        answer = link.request(bytes(rt.Stream(on=True, period_ms=10, mode="summary",
                                              summary_period_ms=300, sequence=1).BYTES))
        assert rt.StreamWriteResponse.loads(answer).mode == "summary"
        link.text.clear()
        summaries: list[dict] = []
        deadline = time.monotonic() + 10
        while len(summaries) < 2 and time.monotonic() < deadline:
            link.receive(timeout_s=0.3)
            summaries = [json.loads(x)["summary"] for x in link.text if b"summary" in x]
        assert len(summaries) >= 2
        s = summaries[-1]
        assert s["n"] > 5 and sum(s["counts"].values()) == s["n"] == sum(s["confidence_hist"])
        assert len(s["confidence_hist"]) == 10 and s["latency_us_p95"] >= s["latency_us_p50"]
        assert 250 <= s["period_ms"] <= 2000
        bad = link.request(bytes(rt.Stream(on=True, period_ms=1, sequence=2).BYTES))
        assert bad is not None and b"rc" in bad  # EINVAL, as the virtual board
        # raw again with scores only, then off: no more lines
        answer = link.request(bytes(rt.Stream(on=True, period_ms=20, mode="raw",
                                              fields=["scores"], sequence=3).BYTES))
        assert rt.StreamWriteResponse.loads(answer).mode == "raw"
        link.text.clear()
        deadline = time.monotonic() + 10
        while len(link.text) < 3 and time.monotonic() < deadline:
            assert link.receive(timeout_s=0.3) is None
        only = json.loads(link.text[-1])
        assert set(only) == {"t", "scores", "state"}
        off = link.request(bytes(rt.Stream(on=False, sequence=4).BYTES))
        assert rt.StreamWriteResponse.loads(off).on is False
        link.text.clear()
        assert link.receive(timeout_s=0.5) is None and not link.text
    finally:
        link.close()


def test_vectors_are_answered_byte_for_byte(host_board) -> None:
    board = host_board()
    link = fw_host.RawLink(board.port)
    try:
        for request, response in [
            ("infer request", "infer error: no model"),
            ("stream request", "stream response"),
            ("stream request, summary mode", "stream response, summary mode"),
        ]:
            packet = bytearray.fromhex(VECTORS[request]["hex"])
            packet[6] = VECTORS[response]["sequence"]
            assert link.request(bytes(packet)).hex() == VECTORS[response]["hex"], response
        # the digest-mismatch answer: a file at the vector's path whose digest differs
        with DeviceSession.open(board.port) as dev:
            dev.upload_file(MODEL, "/lfs/models/9f86d081884c.tflite")
        packet = bytearray.fromhex(VECTORS["load-model request"]["hex"])
        packet[6] = VECTORS["load-model error: digest mismatch"]["sequence"]
        assert link.request(bytes(packet)).hex() == \
            VECTORS["load-model error: digest mismatch"]["hex"]
    finally:
        link.close()


def test_answers_are_canonical_cbor(host_board) -> None:
    import cbor2

    board = host_board()
    with DeviceSession.open(board.port) as dev:
        _install(dev, MODEL)
    link = fw_host.RawLink(board.port)
    try:
        for request in (rt.ModelInfo(sequence=1), rt.Stats(sequence=2),
                        rt.Infer(input=bytes(384), sequence=3)):
            body = link.request(bytes(request.BYTES))[8:]
            assert cbor2.dumps(cbor2.loads(body), canonical=True) == body
    finally:
        link.close()


def test_preserved_operator_outputs_are_read_in_chunks(host_board) -> None:
    with DeviceSession.open(host_board().port) as dev:
        _install(dev, MODEL)
        raw = os.urandom(384)
        answer = dev.request(rt.Infer(input=raw, preserve=True))
        assert answer.ops == 2 and bytes(answer.output) == _expected_output(raw)
        first = dev.request(rt.Tensor(op=0))
        assert (first.total, first.off, first.len, first.ops) == (384, 0, 384, 2)
        signed = [b - 256 if b > 127 else b for b in raw]
        assert bytes(first.data) == bytes((127 if v == -128 else abs(v)) & 0xFF for v in signed)
        assert first.spec is not None and first.spec.shape == [1, 128, 3]
        tail = dev.request(rt.Tensor(op=0, off=300))
        assert (tail.off, tail.len, bytes(tail.data)) == (300, 84, bytes(first.data)[300:])
        assert tail.spec is None
        assert bytes(dev.request(rt.Tensor(op=1)).data) == _expected_output(raw)
        assert _refused(dev, rt.Tensor(op=2)) == rt.RUNTIME_ERR.NOT_FOUND
        dev.infer(raw)  # without preserve: nothing kept
        assert _refused(dev, rt.Tensor(op=0)) == rt.RUNTIME_ERR.NOT_FOUND


def test_version_1_requests_get_legacy_rc(host_board) -> None:
    from smpclient.requests import file_management as fsreq

    link = fw_host.RawLink(host_board().port)
    try:
        packet = bytearray(fsreq.FileStatus(name="/lfs/missing").BYTES)
        packet[0] &= 0b11100111  # version 1
        answer = link.request(bytes(packet))
        assert answer[0] == 0x01  # v1 read response
        assert answer[8:] == bytes.fromhex("a1627263") + bytes([fsm.FS_MGMT_ERR.UNKNOWN + 4])
    finally:
        link.close()
