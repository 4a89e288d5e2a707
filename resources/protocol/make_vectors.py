"""Write ``vectors.json``: SMP frames of the TinyOps runtime group, built independently.

The frames are packed here with ``struct`` (the 8-byte SMP header) and ``cbor2``
(canonical CBOR), not with the message classes under test, so the tests that compare
``device_drivers.protocol.runtime`` and the virtual board against these bytes are a real
check of the spec in ``runtime_group.md``.
Run: ``uv run python resources/protocol/make_vectors.py``.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import cbor2

GROUP = 64
READ, READ_RSP, WRITE, WRITE_RSP = 0, 1, 2, 3
VERSION_2 = 1
SHA = bytes.fromhex("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")


def frame(op: int, command: int, seq: int, body: dict) -> bytes:
    payload = cbor2.dumps(body, canonical=True)
    # res:3 ver:2 op:3 | flags | length (BE) | group (BE) | sequence | command
    first = (VERSION_2 << 3) | op
    return struct.pack("!BBHHBB", first, 0, len(payload), GROUP, seq, command) + payload


def jsonable(value: object) -> object:
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


SPEC_IN = {"name": "serving_default_input:0", "dtype": "int8", "shape": [1, 128, 3],
           "scale": 0.0078125, "zero_point": -1}
SPEC_OUT = {"name": "StatefulPartitionedCall:0", "dtype": "int8", "shape": [1, 3],
            "scale": 0.00390625, "zero_point": -128}

VECTORS = [
    ("model-info request", "ModelInfoReadRequest", READ, 0, 1, {}),
    ("model-info response, model loaded", "ModelInfoReadResponse", READ_RSP, 0, 1, {
        "runtime": "tinyops-runtime 1.0.0", "protocol": 1, "board": "nano33ble", "loaded": True,
        "path": "/lfs/models/9f86d081884c.tflite", "sha256": SHA, "size": 21504,
        "arena_size": 196608, "arena_used": 9872, "inputs": [SPEC_IN], "outputs": [SPEC_OUT],
        "labels": ["normal", "imbalance", "bearing_fault"], "default_path": "/lfs/model.tflite"}),
    ("model-info response, empty board", "ModelInfoReadResponse", READ_RSP, 0, 2, {
        "runtime": "tinyops-runtime 1.0.0", "protocol": 1, "loaded": False,
        "arena_size": 196608, "default_path": "/lfs/model.tflite"}),
    ("load-model request", "LoadModelWriteRequest", WRITE, 1, 3, {
        "path": "/lfs/models/9f86d081884c.tflite", "sha256": SHA,
        "labels": ["normal", "imbalance", "bearing_fault"]}),
    ("load-model response", "LoadModelWriteResponse", WRITE_RSP, 1, 3, {
        "sha256": SHA, "size": 21504, "arena_used": 9872}),
    ("load-model error: digest mismatch", "RuntimeErrorV2", WRITE_RSP, 1, 4, {
        "err": {"group": 64, "rc": 6}}),
    ("stream request", "StreamWriteRequest", WRITE, 2, 5, {"on": True, "period_ms": 100}),
    ("stream response", "StreamWriteResponse", WRITE_RSP, 2, 5, {"on": True, "period_ms": 100}),
    ("stream request, summary mode", "StreamWriteRequest", WRITE, 2, 9, {
        "on": True, "period_ms": 100, "mode": "summary", "summary_period_ms": 10000}),
    ("stream response, summary mode", "StreamWriteResponse", WRITE_RSP, 2, 9, {
        "on": True, "period_ms": 100, "mode": "summary", "summary_period_ms": 10000}),
    ("infer request", "InferWriteRequest", WRITE, 3, 6, {"input": bytes(range(0, 24))}),
    ("infer response", "InferWriteResponse", WRITE_RSP, 3, 6, {
        "output": bytes([0x7F, 0x80, 0x81]), "latency_us": 1830}),
    ("infer error: no model", "RuntimeErrorV2", WRITE_RSP, 3, 7, {"err": {"group": 64, "rc": 1}}),
    ("stats request", "StatsReadRequest", READ, 4, 8, {}),
    ("stats response", "StatsReadResponse", READ_RSP, 4, 8, {
        "uptime_ms": 123456, "heap_free": 40960, "heap_total": 65536, "arena_size": 196608,
        "arena_used": 9872, "cpu_load": 0.25, "temp_c": 31.5, "vcc_mv": 3301,
        "inferences": 1234, "last_latency_us": 1830}),
    ("infer request, preserve", "InferWriteRequest", WRITE, 3, 10, {
        "input": bytes(range(0, 24)), "preserve": True}),
    ("infer response, preserve", "InferWriteResponse", WRITE_RSP, 3, 10, {
        "output": bytes([0x7F, 0x80, 0x81]), "latency_us": 1830, "ops": 7}),
    ("tensor request", "TensorReadRequest", READ, 5, 11, {"op": 2, "off": 0}),
    ("tensor response", "TensorReadResponse", READ_RSP, 5, 11, {
        "op": 2, "ops": 7, "off": 0, "len": 4, "total": 4, "data": bytes([1, 2, 0x80, 0xFF]),
        "spec": {"name": "model/conv1d/Relu", "dtype": "int8", "shape": [1, 4],
                 "scale": 0.5, "zero_point": -3}}),
    ("tensor error: not preserved", "RuntimeErrorV2", READ_RSP, 5, 12, {
        "err": {"group": 64, "rc": 5}}),
]


def main() -> None:
    out = []
    for title, cls, op, command, seq, body in VECTORS:
        out.append({"title": title, "class": cls, "op": op, "command": command,
                    "sequence": seq, "fields": jsonable(body),
                    "hex": frame(op, command, seq, body).hex()})
    path = Path(__file__).with_name("vectors.json")
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {len(out)} vectors to {path}")


if __name__ == "__main__":
    main()
