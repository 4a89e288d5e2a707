"""Pure parts of the virtual board: frame reassembly, fault parsing, tensors, MCUboot
image identity, UART pacing, error replies. No pty, no interpreter."""

from __future__ import annotations

import hashlib
import struct
import time

import cbor2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from smp import error as smperr
from smp import image_management as img
from smp import os_management as osm
from smp import packet as smppacket

from device_drivers.errors import InputError
from device_drivers.protocol import runtime as rt
from device_drivers.virtual import tensors
from device_drivers.virtual.faults import FaultConfig, FaultInjector, Pacer, parse_faults
from device_drivers.virtual.images import image_identity
from device_drivers.virtual.smp_server import Dispatcher, Fail, RxFramer, encode_frame

text_line = st.binary(max_size=200).map(
    lambda b: bytes(c for c in b if c not in (0x0A, 0x04, 0x06)) + b"\n")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=3000), st.integers(1, 64))
def test_framer_never_raises_on_noise(noise: bytes, step: int) -> None:
    framer = RxFramer(max_frame=4096)
    events = []
    for i in range(0, len(noise), step):
        events += framer.feed(noise[i: i + step])
    assert all(e.kind in ("frame", "bad", "text") for e in events)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(text_line, max_size=3), st.binary(min_size=8, max_size=900)),
                min_size=1, max_size=4), st.integers(1, 300))
def test_framer_recovers_every_frame_between_text_lines(items, step: int) -> None:
    stream = b"".join(b"".join(lines) + encode_frame(msg) for lines, msg in items)
    framer = RxFramer(max_frame=4096)
    events = []
    for i in range(0, len(stream), step):
        events += framer.feed(stream[i: i + step])
    assert [e.data for e in events if e.kind == "frame"] == [msg for _, msg in items]
    assert not [e for e in events if e.kind == "bad"]


def test_framer_counts_a_frame_cut_by_a_new_one_and_oversized_frames() -> None:
    framer = RxFramer(max_frame=256)
    lines = list(smppacket.encode(bytes(200), line_length=64))
    events = framer.feed(lines[0] + encode_frame(b"12345678"))
    assert [e.kind for e in events] == ["bad", "frame"]
    assert [e.kind for e in framer.feed(encode_frame(bytes(400)))] == ["bad"]


def test_corrupted_lines_never_pass_the_crc() -> None:
    injector = FaultInjector(FaultConfig(corrupt=1.0, seed=5))
    framer = RxFramer(max_frame=4096, mutate=lambda line: injector.corrupt_line(line)[0])
    events = []
    for n in range(50):
        events += framer.feed(encode_frame(bytes([n]) * (10 + 37 * n)))
    assert not [e for e in events if e.kind == "frame"]


def test_parse_faults() -> None:
    cfg = parse_faults(["corrupt=0.1", "drop=0.2,delay=50", "disconnect-after=100",
                        "baud=921600"])
    assert cfg == FaultConfig(corrupt=0.1, drop=0.2, delay_ms=50.0, disconnect_after=100,
                              baud=921600)
    assert cfg.active == ["corrupt=0.1", "drop=0.2", "delay=50", "disconnect-after=100",
                          "baud=921600"]
    assert parse_faults([]) == FaultConfig()


@pytest.mark.parametrize("spec", ["corrupt=2", "drop=-0.1", "melt=1", "baud", "baud=fast",
                                  "delay=-5", "disconnect-after=0", "baud=10"])
def test_bad_faults_are_input_errors_with_a_fix(spec: str) -> None:
    with pytest.raises(InputError) as info:
        parse_faults([spec])
    assert info.value.exit_code == 2 and info.value.hint


def test_pacer_lets_bytes_through_at_ten_bits_per_byte() -> None:
    pacer = Pacer(921_600)
    start = time.monotonic()
    for _ in range(10):
        pacer.wait(921)  # 10 x 921 bytes = 0.1 s of line time
    elapsed = time.monotonic() - start
    assert 0.095 <= elapsed < 0.5
    assert Pacer(None).seconds(10_000) == 0


@given(st.floats(-1.0, 1.0), st.floats(0.001, 0.1), st.integers(-128, 127))
def test_quantize_round_trips_within_half_a_step(x: float, scale: float, zero: int) -> None:
    spec = {"dtype": "int8", "shape": [1], "scale": scale, "zero_point": zero}
    raw = tensors.quantize(np.float32([x]), spec)
    assert len(raw) == 1
    back = tensors.dequantize(raw, spec)[0]
    lo, hi = (-128 - zero) * scale, (127 - zero) * scale
    assert abs(back - min(max(x, lo), hi)) <= scale / 2 + 1e-6


def test_window_is_fitted_to_the_input_tensor() -> None:
    window = np.arange(6, dtype=np.float32).reshape(2, 3)
    spec = {"dtype": "float32", "shape": [1, 4, 2], "scale": 0.0, "zero_point": 0}
    raw = tensors.quantize(window, spec)
    assert np.frombuffer(raw, np.float32).tolist() == [0, 1, 2, 3, 4, 5, 0, 1]


@given(st.lists(st.floats(-50, 50), min_size=1, max_size=10))
def test_scores_are_probabilities(values: list[float]) -> None:
    spec = {"dtype": "float32", "shape": [1, len(values)], "scale": 0.0, "zero_point": 0}
    out = tensors.scores(np.float32(values).tobytes(), spec, ["a"])
    assert len(out) == len(values) and next(iter(out)) == "a"
    assert abs(sum(out.values()) - 1) < 0.01 and all(0 <= v <= 1 for v in out.values())


def test_int8_softmax_output_is_dequantized_not_softmaxed_again() -> None:
    spec = {"dtype": "int8", "shape": [1, 3], "scale": 1 / 256, "zero_point": -128}
    raw = np.int8([-128 + 230, -128 + 20, -128 + 6]).tobytes()  # 0.898, 0.078, 0.023
    out = tensors.scores(raw, spec, ["x", "y", "z"])
    assert out == pytest.approx({"x": 0.8984, "y": 0.0781, "z": 0.0234}, abs=1e-4)


def test_image_identity_reads_mcuboot_version_and_sha_tlv() -> None:
    body = b"\xab" * 100
    header = struct.pack("<IIHHIIBBHI", 0x96F3B83D, 0, 32, 0, len(body), 0, 3, 4, 5, 6)
    header = header.ljust(32, b"\0")
    digest = hashlib.sha256(b"not the file").digest()
    tlvs = struct.pack("<BxH", 0x01, 4) + b"abcd" + struct.pack("<BxH", 0x10, 32) + digest
    image = header + body + struct.pack("<HH", 0x6907, 4 + len(tlvs)) + tlvs
    assert image_identity(image) == ("3.4.5.6", digest)
    plain = b"firmware.bin contents"
    assert image_identity(plain) == ("0.0.0", hashlib.sha256(plain).digest())


def _request_frame(group: int, command: int, op: int = 0, body: dict | None = None) -> bytes:
    payload = cbor2.dumps(body or {})
    return struct.pack("!BBHHBB", (1 << 3) | op, 0, len(payload), group, 9, command) + payload


def test_dispatcher_replies_parse_with_smp_classes() -> None:
    d = Dispatcher()
    d.add(osm.EchoWriteRequest, lambda r: osm.EchoWriteResponse(r=r.d.upper()))

    def refuse(_r):
        raise Fail(img.IMG_MGMT_ERR.NO_IMAGE, 1, error_cls=img.ImageManagementErrorV2)

    d.add(img.ImageStatesReadRequest, refuse)
    reply, _ = d.handle(_request_frame(0, 0, op=2, body={"d": "hi"}))
    assert osm.EchoWriteResponse.loads(reply).r == "HI"
    assert reply[0] & 0b111 == 3 and reply[6] == 9  # WRITE_RSP, same sequence
    reply, _ = d.handle(_request_frame(1, 0))
    assert img.ImageManagementErrorV2.loads(reply).err.rc == img.IMG_MGMT_ERR.NO_IMAGE
    reply, _ = d.handle(_request_frame(64, 3, op=2, body={"input": b""}))
    assert cbor2.loads(reply[8:])["rc"] == smperr.MGMT_ERR.ENOTSUP
    reply, _ = d.handle(_request_frame(0, 0, op=2, body={"nope": 1}))
    assert cbor2.loads(reply[8:])["rc"] == smperr.MGMT_ERR.EINVAL
    assert d.handle(b"\x01\x02") == (None, None)  # too short: ignored


def test_runtime_error_reply_matches_the_protocol_vector() -> None:
    d = Dispatcher()

    def mismatch(_r):
        raise Fail(rt.RUNTIME_ERR.DIGEST_MISMATCH, rt.GROUP_ID, error_cls=rt.RuntimeErrorV2)

    d.add(rt.LoadModelWriteRequest, mismatch)
    request = struct.pack("!BBHHBB", (1 << 3) | 2, 0, 0, 64, 4, 1)
    body = cbor2.dumps({"path": "/lfs/m.tflite"}, canonical=True)
    request = request[:2] + struct.pack("!H", len(body)) + request[4:] + body
    reply, _ = d.handle(request)
    expected = struct.pack("!BBHHBB", (1 << 3) | 3, 0, 0, 64, 4, 1)
    err_body = cbor2.dumps({"err": {"group": 64, "rc": 6}}, canonical=True)
    assert reply == expected[:2] + struct.pack("!H", len(err_body)) + expected[4:] + err_body
