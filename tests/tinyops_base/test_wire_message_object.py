"""tinyops_base.wire: a message is always an object, whatever its header looks like."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from tinyops_base import wire


def _frame(header: dict[str, object], payload: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return wire._HEAD.pack(wire.MAGIC, len(raw)) + raw + payload


def test_a_header_shaped_like_a_buffer_reference_stays_a_message() -> None:
    # {"_nd": 0} is how a value refers to buffer 0; as the whole header it is just a key
    data = _frame({"_nd": 0, "_buffers": [{"dtype": "uint8", "shape": [2]}]}, b"ab")
    with pytest.raises(wire.WireError, match="unreferenced"):
        wire.read_message(wire.stream_reader(io.BytesIO(data)))


def test_a_reference_one_level_down_still_resolves() -> None:
    data = _frame({"x": {"_nd": 0}, "_buffers": [{"dtype": "uint8", "shape": [2]}]}, b"ab")
    message = wire.read_message(wire.stream_reader(io.BytesIO(data)))
    assert isinstance(message, dict)
    np.testing.assert_array_equal(message["x"], np.frombuffer(b"ab", np.uint8))


def test_round_trip_through_encode() -> None:
    sent = {"cmd": "run", "x": np.arange(6, dtype=np.float32).reshape(2, 3), "raw": b"\x01\x02"}
    got = wire.read_message(wire.stream_reader(io.BytesIO(wire.encode(sent))))
    assert got["cmd"] == "run" and got["raw"] == b"\x01\x02"
    np.testing.assert_array_equal(got["x"], sent["x"])
