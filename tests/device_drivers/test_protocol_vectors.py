"""The runtime group's messages against the spec's test vectors (resources/protocol)."""

from __future__ import annotations

import json

import cbor2
import pytest
from smp import header as smphdr

from device_drivers import paths
from device_drivers.protocol import runtime

VECTORS = json.loads((paths.resources_dir() / "protocol" / "vectors.json").read_text())


def _decode(value: object) -> object:
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _build(vector: dict) -> bytes:
    cls = getattr(runtime, vector["class"])
    fields = _decode(vector["fields"])
    if issubclass(cls, (runtime.RuntimeErrorV2, runtime.RuntimeErrorV1)):
        body = cbor2.dumps(fields, canonical=True)
        header = smphdr.Header(op=smphdr.OP(vector["op"]), version=smphdr.Version.V2,
                               flags=smphdr.Flag(0), length=len(body),
                               group_id=runtime.GROUP_ID, sequence=vector["sequence"],
                               command_id=vector["command"])
        return cls(header=header, **fields).BYTES
    return cls(sequence=vector["sequence"], **fields).BYTES


def test_vectors_cover_every_command_both_ways() -> None:
    seen = {(v["op"], v["command"]) for v in VECTORS}
    for command in runtime.Command:
        assert any(c == command for _, c in seen), command
    assert {op for op, _ in seen} == {0, 1, 2, 3}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["title"] for v in VECTORS])
def test_message_classes_encode_exactly_the_vector(vector: dict) -> None:
    assert _build(vector).hex() == vector["hex"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["title"] for v in VECTORS])
def test_vector_bytes_decode_to_the_documented_fields(vector: dict) -> None:
    cls = getattr(runtime, vector["class"])
    message = cls.loads(bytes.fromhex(vector["hex"]))
    assert message.header.group_id == runtime.GROUP_ID
    assert int(message.header.command_id) == vector["command"]
    assert message.header.sequence == vector["sequence"]
    dumped = message.model_dump(exclude_unset=True, exclude_none=True,
                                exclude={"header", "version", "sequence", "smp_data"})
    assert dumped == _decode(vector["fields"])


@pytest.mark.parametrize("vector", [v for v in VECTORS if v["op"] in (0, 2)],
                         ids=[v["title"] for v in VECTORS if v["op"] in (0, 2)])
def test_server_dispatch_table_finds_the_request_class(vector: dict) -> None:
    cls = runtime.REQUESTS[(vector["op"], vector["command"])]
    assert cls.__name__ == vector["class"]
    assert cls.loads(bytes.fromhex(vector["hex"])).BYTES.hex() == vector["hex"]


# ---- the virtual board answers the vectors' requests with the vectors' bytes -----------
def _vector(title: str) -> bytes:
    return bytes.fromhex(next(v["hex"] for v in VECTORS if v["title"] == title))


@pytest.fixture(scope="module")
def empty_board():
    from device_drivers.virtual.board import VirtualBoard

    with VirtualBoard(board="nano33ble", default_model=False) as vb:
        yield vb


def test_board_answers_infer_without_a_model_with_the_no_model_vector(empty_board) -> None:
    request = _vector("infer request")
    reply, _ = empty_board.dispatcher.handle(request[:6] + bytes([7]) + request[7:])
    assert reply == _vector("infer error: no model")


def test_board_answers_stream_with_the_stream_response_vector(empty_board) -> None:
    reply, _ = empty_board.dispatcher.handle(_vector("stream request"))
    assert reply == _vector("stream response")


def test_board_refuses_a_digest_mismatch_with_the_vector_error(empty_board) -> None:
    request = bytes.fromhex(next(v["hex"] for v in VECTORS if v["title"] == "load-model request"))
    empty_board.flash.write_file("/lfs/models/9f86d081884c.tflite", b"not the expected bytes")
    reply, _ = empty_board.dispatcher.handle(request[:6] + bytes([4]) + request[7:])
    assert reply == _vector("load-model error: digest mismatch")


def test_board_model_info_reply_parses_as_the_spec_says(empty_board) -> None:
    reply, _ = empty_board.dispatcher.handle(_vector("model-info request"))
    message = runtime.ModelInfoReadResponse.loads(reply)
    assert message.header.sequence == 1 and message.header.op == smphdr.OP.READ_RSP
    assert message.loaded is False and message.runtime.startswith("tinyops-runtime")
    assert message.protocol == 1 and message.default_path.startswith("/")
    stats = runtime.StatsReadResponse.loads(empty_board.dispatcher.handle(
        _vector("stats request"))[0])
    assert stats.header.sequence == 8 and stats.arena_size > 0
