"""The console framing of the host build under garbage: random bytes, half frames, oversize
lines, bad CRCs, text. Nothing hangs or resets the board; it keeps answering."""

from __future__ import annotations

import random
import struct

import fw_host
from smp.os_management import EchoWriteResponse as EchoResponse
from smp.packet import encode
from smpclient.requests import os_management as osreq

from device_drivers.link import DeviceSession
from device_drivers.protocol import runtime


def _echo(seq: int, text: str = "ping") -> bytes:
    req = osreq.EchoWrite(d=text, sequence=seq)
    return bytes(req.BYTES)


def test_a_frame_is_answered_and_its_answer_is_framed_like_zephyr(host_board) -> None:
    link = fw_host.RawLink(host_board().port)
    try:
        big = "x" * 3000  # many lines each way
        answer = link.request(_echo(7, big))
        assert answer is not None
        assert answer[6] == 7 and answer[0] == 0x0B  # v2 write response, same sequence
        assert EchoResponse.loads(answer).r == big
        # short lines from the host (as a 2-line-pool client would send) are taken too
        link.send(_echo(8, "short lines"), line_length=20)
        assert EchoResponse.loads(link.receive()).r == "short lines"
    finally:
        link.close()


def test_garbage_half_frames_and_bad_crc_are_dropped_and_echo_still_answered(host_board):
    board = host_board()
    rng = random.Random(17)
    link = fw_host.RawLink(board.port)
    try:
        with DeviceSession.open(board.port) as dev:
            first = dev.stats()
            before = first.uptime_ms
        good = list(encode(_echo(1, "a" * 400)))
        assert len(good) > 2
        bad_crc = bytearray(_echo(2))
        body = struct.pack("!H", len(bad_crc) + 2) + bytes(bad_crc) + b"\x00\x00"
        import base64
        junk = [
            bytes(rng.randrange(256) for _ in range(20000)),           # random bytes
            b"".join(good[:2]),                                          # a half frame
            b"\x04\x14" + b"QUFB" * 10 + b"\n",                          # orphan continuation
            b"\x06\x09" + b"A" * 400 + b"\n",                            # oversize line
            b"\x06\x09" + base64.b64encode(body) + b"\n",                # bad CRC
            b"\x06\x09!!!!\n",                                           # bad base64
            b"\x06\x09" + base64.b64encode(b"\xff\xff" + b"\x00" * 8) + b"\n",  # huge length
            b"hello, this is plain text\n",
            b"\x06\x09" + base64.b64encode(b"\x00\x0a") + b"\n",         # start, never ends
            bytes(rng.randrange(256) for _ in range(5000)).replace(b"\n", b""),  # no newline
            b"\n",
        ]
        for chunk in junk:
            link.write(chunk)
        # none of it was answered, and the next real frame is
        answer = link.request(_echo(9, "still here"), timeout_s=10)
        assert answer is not None and EchoResponse.loads(answer).r == "still here"
        with DeviceSession.open(board.port) as dev:
            stats = dev.stats()
            after = stats.uptime_ms
            # the oversize line, the bad CRC, bad base64 and huge length at least; the
            # random bytes and the half frame add more
            assert stats.frames_dropped >= first.frames_dropped + 4
            assert stats.rx_dropped == 0
            assert dev.echo("and through the client") == "and through the client"
        assert after > before  # no reset happened (uptime kept counting)
        assert board.proc.poll() is None
    finally:
        link.close()


def test_a_runtime_request_split_by_text_lines_is_still_assembled(host_board) -> None:
    """Text between a frame's lines (a log line) does not break the frame, as in Zephyr."""
    link = fw_host.RawLink(host_board().port)
    try:
        lines = list(encode(bytes(runtime.ModelInfo(sequence=3).BYTES), line_length=16))
        assert len(lines) >= 2
        for line in lines:
            link.write(line)
            link.write(b"some log text\n")
        answer = link.receive()
        assert answer is not None
        info = runtime.ModelInfoReadResponse.loads(answer)
        assert info.loaded is False and info.protocol == 1
    finally:
        link.close()
