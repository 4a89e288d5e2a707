"""SMP wins over the telemetry stream: with a slow model (the test double made to take
300 ms per inference, as DS-CNN takes ~0.6 s on the M3 build in QEMU) and the stream due
every 10 ms, every SMP answer comes within about one inference, and no stream inference
runs while a frame is partly received."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import fw_host
from smp import file_management as fsm

from device_drivers.link import DeviceSession
from device_drivers.protocol import runtime as rt

ROOT = Path(__file__).resolve().parents[2]
MODEL = (ROOT / "resources" / "examples" / "vibration" / "model_int8.tflite").read_bytes()
INFER_S = 0.3


def _slow_streaming_board(host_board, monkeypatch) -> fw_host.RawLink:
    monkeypatch.setenv("TINYOPS_DOUBLE_INFER_MS", str(int(INFER_S * 1000)))
    board = host_board()
    with DeviceSession.open(board.port) as dev:
        assert dev.upload_file(MODEL, "/lfs/model.tflite").verified
        dev.load_model("/lfs/model.tflite", sha256=hashlib.sha256(MODEL).digest())
    link = fw_host.RawLink(board.port)
    answer = link.request(bytes(rt.Stream(on=True, period_ms=10, mode="raw",
                                          fields=["scores"], sequence=1).BYTES), timeout_s=10)
    assert answer is not None and rt.StreamWriteResponse.loads(answer).on
    deadline = time.monotonic() + 10  # the stream is running: inferences back to back
    while len(_stream_lines(link)) < 2 and time.monotonic() < deadline:
        link.receive(timeout_s=0.2)
    assert len(_stream_lines(link)) >= 2
    return link


def _stream_lines(link: fw_host.RawLink) -> list[dict]:
    return [json.loads(x) for x in link.text if x.startswith(b"{")]


def test_smp_answers_wait_at_most_one_inference_while_streaming(host_board, monkeypatch) -> None:
    link = _slow_streaming_board(host_board, monkeypatch)
    try:
        data = bytes(range(256)) * 32  # 8 KB in 2 KB chunks: ~2.8 KB of base64 per request
        waits = []
        for i, off in enumerate(range(0, len(data), 2048)):
            req = fsm.FileUploadRequest(off=off, data=data[off:off + 2048], name="/lfs/x.bin",
                                        len=len(data) if off == 0 else None, sequence=10 + i)
            t0 = time.monotonic()
            answer = link.request(bytes(req.BYTES), timeout_s=5)
            waits.append(time.monotonic() - t0)
            assert answer is not None, f"no answer to chunk {i} within 5 s"
            assert fsm.FileUploadResponse.loads(answer).off == off + 2048
        print("SMP answer waits while streaming (s):", [round(w, 3) for w in waits])
        # one inference in progress when the request starts, plus the pty and the sanitizers
        assert max(waits) < 2 * INFER_S + 0.5, waits
        # and the stream still runs between requests
        link.text.clear()
        deadline = time.monotonic() + 10
        while len(_stream_lines(link)) < 2 and time.monotonic() < deadline:
            link.receive(timeout_s=0.3)
        assert len(_stream_lines(link)) >= 2
    finally:
        link.close()


def test_no_stream_inference_while_a_frame_is_partly_received(host_board, monkeypatch) -> None:
    from smp.packet import encode

    link = _slow_streaming_board(host_board, monkeypatch)
    try:
        req = fsm.FileUploadRequest(off=0, data=bytes(400), name="/lfs/y.bin", len=400,
                                    sequence=20)
        lines = list(encode(bytes(req.BYTES), line_length=127))
        assert len(lines) > 1
        link.write(lines[0])
        time.sleep(0.2 + INFER_S)  # let the inference under way finish and print its line
        link.receive(timeout_s=0.1)
        link.text.clear()
        # the frame is open: the stream is due every 10 ms but must not run
        assert link.receive(timeout_s=3 * INFER_S) is None
        assert _stream_lines(link) == []
        for line in lines[1:]:
            link.write(line)
        answer = link.receive(timeout_s=10)
        assert answer is not None and fsm.FileUploadResponse.loads(answer).off == 400
        deadline = time.monotonic() + 10
        while not _stream_lines(link) and time.monotonic() < deadline:
            link.receive(timeout_s=0.3)
        assert _stream_lines(link), "the stream did not resume after the frame"
    finally:
        link.close()


def test_a_frame_left_half_received_holds_the_stream_back_only_for_a_while(
        host_board, monkeypatch) -> None:
    """A host gone mid-frame must not stop the stream for good (main.c's RX_STALE_MS, 3 s)."""
    link = _slow_streaming_board(host_board, monkeypatch)
    try:
        link.write(b"\x06\x09AAAA")  # a frame line, never finished
        time.sleep(0.2 + INFER_S)
        link.receive(timeout_s=0.1)
        link.text.clear()
        t0 = time.monotonic()
        deadline = t0 + 15
        while not _stream_lines(link) and time.monotonic() < deadline:
            link.receive(timeout_s=0.3)
        held = time.monotonic() - t0
        assert _stream_lines(link), "the stream never resumed"
        assert held > 1.5, held  # it was held back first
        # the board still answers SMP after the stray bytes (the next start line resyncs)
        link.write(b"\n")
        answer = link.request(bytes(rt.Stream(on=False, sequence=30).BYTES), timeout_s=10)
        assert answer is not None and rt.StreamWriteResponse.loads(answer).on is False
    finally:
        link.close()
