"""Random requests to every group and command of the host build (built with ASan/UBSan):
fields of the wrong type, missing, huge or odd. Every request is answered, the board stays
up, and its state is intact afterwards."""

from __future__ import annotations

import random
import struct

import cbor2
import fw_host

from device_drivers.link import DeviceSession

KEYS = ["d", "name", "off", "len", "data", "type", "format", "index", "groups", "path",
        "sha256", "labels", "on", "period_ms", "fields", "mode", "summary_period_ms", "input",
        "preserve", "op", "force"]


def _value(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(11 if depth < 3 else 8)
    return [
        lambda: rng.randrange(-(2**40), 2**40),
        lambda: rng.choice([0, 1, 23, 24, 255, 65535, 2**32, 2**63 - 1]),
        lambda: rng.random() * 1e6,
        lambda: bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 32, 383, 384, 900]))),
        lambda: rng.choice(["", "/lfs/x", "/lfs/model-a.tflite", "/lfs/../etc", "sha256",
                            "crc32", "summary", "raw", "a", "x" * 200, "/lfs/" + "y" * 80]),
        lambda: rng.choice([True, False, None]),
        lambda: "snrvbmpioa"[: rng.randrange(11)],
        lambda: -1,
        lambda: [_value(rng, depth + 1) for _ in range(rng.randrange(4))],
        lambda: {rng.choice(KEYS): _value(rng, depth + 1) for _ in range(rng.randrange(3))},
        lambda: ["scores", "latency", "resources", "bogus"][: rng.randrange(5)],
    ][kind]()


def _packet(rng: random.Random, seq: int) -> bytes:
    body = cbor2.dumps({rng.choice(KEYS): _value(rng) for _ in range(rng.randrange(5))})
    group = rng.choice([0, 8, 10, 64, 64, 1, 2, 63, 65, 300])
    op = rng.choice([0, 2])
    command = rng.randrange(9)
    if group == 0 and command == 5:
        command = 0  # no resets here: the answers are counted
    version = rng.choice([0, 1, 1])
    return struct.pack("!BBHHBB", version << 3 | op, 0, len(body), group, seq, command) + body


def test_random_requests_are_all_answered_and_the_board_survives(host_board) -> None:
    board = host_board()
    rng = random.Random(2026)
    link = fw_host.RawLink(board.port)
    try:
        for seq in range(600):
            packet = _packet(rng, seq % 256)
            answer = link.request(packet, timeout_s=5)
            assert answer is not None, packet.hex()
            assert answer[6] == packet[6] and answer[0] & 7 == (packet[0] & 7) + 1
            cbor2.loads(answer[8:])  # a well-formed body, whatever it says
    finally:
        link.close()
    assert board.proc.poll() is None
    with DeviceSession.open(board.port) as dev:
        assert dev.echo("alive") == "alive"
        assert dev.stats().uptime_ms > 0
