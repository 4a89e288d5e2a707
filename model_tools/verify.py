"""Verify a ``.tflite`` file before anything else reads it.

Two layers, both pure Python (no TensorFlow, no C++ that could crash the process):

1. **FlatBuffer wire format** against the TFLite schema (``fb_schema``): the root offset,
   every table's vtable, every field, string, vector and union value lies inside the
   buffer and is aligned; nesting depth and table count are bounded. This is what
   flatbuffers' C++ ``Verifier`` checks (TFLM runs none of it on the device).
2. **TFLite semantics** a reader would otherwise trust: the ``TFL3`` identifier, schema
   version 3, operator-code / tensor / buffer / subgraph indices in range, constant
   buffers at least as large as their tensors, quantization vectors consistent.

The rule for the second layer: reject only what TFLite's interpreter rejects too or what
TFLM cannot use; accept what TFLM runs even where TFLite's stricter ``InterpreterBuilder``
refuses it (``_check_quantization``: TFLM's own person-detection model is one such).
``tests/model_tools/test_verify_oracle.py`` checks both directions against both runtimes.

A failure raises ``InvalidModelError`` (exit code 2) with the first problem found, naming the
tensor, operator, buffer or field and why.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from model_tools.errors import InvalidModelError
from model_tools.fb_schema import SCALARS, Schema, tflite_schema

IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
MAX_DEPTH = 64
MAX_TABLES = 1_000_000
# Bytes per element of each TensorType with a fixed size (sub-byte types round up later).
DTYPE_BITS = {
    "FLOAT32": 32, "FLOAT16": 16, "INT32": 32, "UINT8": 8, "INT64": 64, "BOOL": 8, "INT16": 16,
    "COMPLEX64": 64, "INT8": 8, "FLOAT64": 64, "COMPLEX128": 128, "UINT64": 64, "UINT32": 32,
    "UINT16": 16, "INT4": 4, "BFLOAT16": 16, "INT2": 2, "UINT4": 4, "FLOAT8_E4M3FN": 8,
    "FLOAT8_E5M2": 8,
}
_HINT = "the file is truncated, corrupted or not a TFLite model: export it again from the converter"


class _Fail(Exception):
    pass


class _WireVerifier:
    def __init__(self, buf: bytes, schema: Schema) -> None:
        self.buf = buf
        self.n = len(buf)
        self.schema = schema
        self.tables = 0

    # -- primitives -------------------------------------------------------------------------
    def _need(self, pos: int, size: int, align: int, what: str) -> None:
        if pos < 0 or size < 0 or pos + size > self.n:
            raise _Fail(f"{what} at byte {pos} (+{size}) is outside the {self.n}-byte file")
        if align > 1 and pos % align:
            raise _Fail(f"{what} at byte {pos} is not {align}-byte aligned")

    def _u32(self, pos: int, what: str) -> int:
        self._need(pos, 4, 4, what)
        return int(struct.unpack_from("<I", self.buf, pos)[0])

    def _deref(self, pos: int, what: str) -> int:
        offset = self._u32(pos, what)
        if offset == 0 or offset >= 1 << 31:  # as flatbuffers' Verifier::VerifyOffset
            raise _Fail(f"{what} at byte {pos} has an invalid offset {offset}")
        target = pos + offset
        if target >= self.n:
            raise _Fail(f"{what} at byte {pos} points past the end of the file")
        return target

    def _vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        count = self._u32(pos, what + " length")
        self._need(pos + 4, count * elem, min(elem, 8), what)
        return count, pos + 4

    def _string(self, pos: int, what: str) -> None:
        count, start = self._vector(pos, 1, what)
        self._need(start + count, 1, 1, what + " terminator")
        if self.buf[start + count] != 0:
            raise _Fail(f"{what} at byte {pos} is not zero-terminated")

    # -- tables -----------------------------------------------------------------------------
    def table(self, pos: int, name: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise _Fail(f"tables nested deeper than {MAX_DEPTH}")
        self.tables += 1
        if self.tables > MAX_TABLES:
            raise _Fail(f"more than {MAX_TABLES} tables")
        self._need(pos, 4, 4, f"{name} table")
        vt = pos - struct.unpack_from("<i", self.buf, pos)[0]
        self._need(vt, 4, 2, f"{name} vtable")
        vt_size, obj_size = struct.unpack_from("<HH", self.buf, vt)
        if vt_size < 4 or vt_size % 2:
            raise _Fail(f"{name} vtable at byte {vt} has an invalid size {vt_size}")
        self._need(vt, vt_size, 2, f"{name} vtable")
        if obj_size < 4:
            raise _Fail(f"{name} table at byte {pos} has an invalid size {obj_size}")
        self._need(pos, obj_size, 4, f"{name} table")
        values: dict[str, int] = {}
        for f in self.schema.tables[name]:
            if f.voffset + 2 > vt_size:
                continue
            rel = struct.unpack_from("<H", self.buf, vt + f.voffset)[0]
            if not rel:
                continue
            size = f.inline_size
            if rel + size > obj_size:
                raise _Fail(f"{name}.{f.name} lies outside its table at byte {pos}")
            at = pos + rel
            what = f"{name}.{f.name}"
            if f.kind == "scalar":
                fmt, width = SCALARS[f.scalar or "Uint8"]
                self._need(at, width, width, what)
                values[f.name] = struct.unpack_from(fmt, self.buf, at)[0]
                continue
            target = self._deref(at, what)
            if f.kind == "string":
                self._string(target, what)
            elif f.kind == "table":
                self.table(target, f.ref or "", depth + 1)
            elif f.kind == "vector_scalar":
                self._vector(target, SCALARS[f.scalar or "Uint8"][1], what)
            elif f.kind in ("vector_table", "vector_string"):
                count, start = self._vector(target, 4, what)
                for i in range(count):
                    elem = self._deref(start + 4 * i, f"{what}[{i}]")
                    if f.kind == "vector_table":
                        self.table(elem, f.ref or "", depth + 1)
                    else:
                        self._string(elem, f"{what}[{i}]")
            elif f.kind == "union":
                member = self.schema.union_member(f.ref or "", values.get(f.name + "Type", 0))
                if member and member != "NONE" and member in self.schema.tables:
                    self.table(target, member, depth + 1)


def verify_flatbuffer(data: bytes, schema: Schema | None = None) -> None:
    """Wire-format check of a TFLite FlatBuffer; raises ``InvalidModelError``."""
    if len(data) < 8:
        raise InvalidModelError(f"not a TFLite model: only {len(data)} bytes", _HINT)
    if data[4:8] != IDENTIFIER:
        raise InvalidModelError(
            f"not a TFLite model: file identifier is {bytes(data[4:8])!r}, expected b'TFL3'",
            "pick a .tflite file written by the TensorFlow Lite converter")
    v = _WireVerifier(bytes(data), schema or tflite_schema())
    try:
        v.table(v._deref(0, "root offset"), "Model", 0)
    except _Fail as exc:
        raise InvalidModelError(f"corrupt TFLite FlatBuffer: {exc}", _HINT) from None


# -- semantic checks on the parsed model ------------------------------------------------------

@dataclass
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    scales: tuple[float, ...]
    zero_points: tuple[int, ...]
    quantized_dimension: int
    const_bytes: int  # bytes of constant data in the flatbuffer (0 for activations)
    is_variable: bool

    @property
    def nbytes(self) -> int:
        count = 1
        for d in self.shape:
            count *= max(d, 0)
        return (count * DTYPE_BITS.get(self.dtype, 8) + 7) // 8


@dataclass
class OperatorInfo:
    index: int
    op: str  # builtin name, or "CUSTOM:<code>"
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: Any = None  # the generated *OptionsT object, if any


@dataclass
class SubgraphInfo:
    name: str
    tensors: list[TensorInfo]
    operators: list[OperatorInfo]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]


@dataclass
class TfliteModel:
    """A verified ``.tflite`` model: raw bytes plus what analysis needs from the schema."""

    data: bytes
    subgraphs: list[SubgraphInfo]
    description: str
    metadata: dict[str, int]  # name -> buffer index

    @property
    def main(self) -> SubgraphInfo:
        return self.subgraphs[0]


def _ints(values: Any) -> tuple[int, ...]:
    if values is None or isinstance(values, int):
        return ()
    return tuple(int(v) for v in values)


def _check_index(idx: int, limit: int, what: str, allow_optional: bool = False) -> None:
    if allow_optional and idx == -1:
        return
    if not 0 <= idx < limit:
        raise InvalidModelError(
            f"corrupt TFLite model: {what} {idx} is out of range (0..{limit - 1})", _HINT)


def _check_quantization(t: TensorInfo) -> None:
    """Reject quantization TFLM would misread; accept what it reads safely.

    TFLM (``micro_allocator.cc``) copies ``scale`` and ``zero_point`` as they are; a single zero
    point for many scales is its documented space saving, so it is accepted (TFLite's
    interpreter refuses it). Per-axis scales must match the tensor's size along
    ``quantized_dimension`` (TFLite refuses otherwise, TFLM's conv / depthwise / fully-connected
    kernels too). A ``quantized_dimension`` outside a 1-D tensor whose length equals the
    number of scales is accepted: older converters copied the weights' dimension into the
    biases (TFLM's person-detection model has ``quantized_dimension`` 3 on every bias), TFLM
    never reads it for such a tensor, and the scales can only run along its one axis.
    """
    n, nz, qdim, shape = len(t.scales), len(t.zero_points), t.quantized_dimension, t.shape
    where = f"tensor {t.index} ({t.name!r}, shape {shape})"
    if n and nz not in (n, 1):
        raise InvalidModelError(
            f"corrupt TFLite model: {where}: quantization.zero_point has {nz} values for {n} "
            "scales (TFLM and TFLite need one per scale, or a single one for all)", _HINT)
    if n <= 1 or not shape:  # per-tensor, or a scalar (TFLite ignores the axis of scalars)
        return
    if 0 <= qdim < len(shape):
        if shape[qdim] != n:
            raise InvalidModelError(
                f"corrupt TFLite model: {where}: {n} per-axis quantization scales but dimension "
                f"{qdim} (quantization.quantized_dimension) has {shape[qdim]} channels", _HINT)
        return
    if len(shape) == 1 and shape[0] == n:
        return
    raise InvalidModelError(
        f"corrupt TFLite model: {where}: quantization.quantized_dimension {qdim} is outside its "
        f"{len(shape)} dimensions ({n} per-axis scales; TFLM's kernels would index the shape "
        "with it)", _HINT)


def _parse(data: bytes, schema: Schema) -> TfliteModel:
    from model_tools.fb_schema import generated_module

    gen = generated_module()
    model = gen.ModelT.InitFromObj(gen.Model.GetRootAs(data, 0))
    if model.version != SCHEMA_VERSION:
        raise InvalidModelError(
            f"unsupported TFLite schema version {model.version} (TFLite Micro reads version 3)",
            "convert the model again with a current TensorFlow")
    buffers = model.buffers or []
    codes = model.operatorCodes or []
    if not model.subgraphs:
        raise InvalidModelError("corrupt TFLite model: it has no subgraph", _HINT)
    op_names = schema.enums["BuiltinOperator"]
    dtypes = schema.enums["TensorType"]
    subgraphs = []
    for sg in model.subgraphs:
        tensors = []
        for ti, t in enumerate(sg.tensors or []):
            shape = _ints(t.shape)
            if any(d < 0 for d in shape):
                raise InvalidModelError(
                    f"corrupt TFLite model: tensor {ti}: Tensor.shape {shape} has a negative "
                    "dimension", _HINT)
            if t.type not in dtypes:
                raise InvalidModelError(
                    f"corrupt TFLite model: tensor {ti}: Tensor.type {t.type} is not a "
                    "TensorType of schema version 3", _HINT)
            _check_index(t.buffer, max(len(buffers), 1), f"tensor {ti} buffer index")
            buf = buffers[t.buffer] if buffers else None
            const = 0
            if buf is not None and buf.data is not None and not isinstance(buf.data, int):
                const = len(buf.data)
            elif buf is not None and buf.offset > 1:
                if buf.offset + buf.size > len(data):
                    raise InvalidModelError(
                        f"corrupt TFLite model: buffer {t.buffer} (of tensor {ti}): Buffer.offset "
                        f"{buf.offset} + size {buf.size} lies outside the file", _HINT)
                const = int(buf.size)
            q = t.quantization
            scales = tuple(float(s) for s in (q.scale if q is not None and q.scale is not None
                                              and not isinstance(q.scale, int) else ()))
            zps = _ints(q.zeroPoint) if q is not None else ()
            qdim = int(q.quantizedDimension) if q is not None else 0
            info = TensorInfo(ti, (t.name or b"").decode("utf-8", "replace"), shape,
                              dtypes[t.type], int(t.buffer), scales, zps, qdim, const,
                              bool(t.isVariable))
            _check_quantization(info)
            if const and info.dtype != "STRING" and const < info.nbytes:
                raise InvalidModelError(
                    f"corrupt TFLite model: tensor {ti} ({info.name!r}): shape {shape} of "
                    f"{info.dtype} needs {info.nbytes} bytes but buffer {t.buffer} holds {const}",
                    _HINT)
            tensors.append(info)
        n = len(tensors)
        for idx in _ints(sg.inputs) + _ints(sg.outputs):
            _check_index(idx, n, "subgraph input/output tensor")
        ops = []
        for oi, op in enumerate(sg.operators or []):
            _check_index(op.opcodeIndex, max(len(codes), 1), f"operator {oi} opcode index")
            if not codes:
                raise InvalidModelError("corrupt TFLite model: operators but no operator codes",
                                        _HINT)
            code = codes[op.opcodeIndex]
            builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
            name = op_names.get(builtin, f"UNKNOWN_{builtin}")
            if name == "CUSTOM":
                name = "CUSTOM:" + (code.customCode or b"?").decode("utf-8", "replace")
            for idx in _ints(op.inputs) + _ints(op.intermediates):
                _check_index(idx, n, f"operator {oi} ({name}) input tensor", allow_optional=True)
            for idx in _ints(op.outputs):
                _check_index(idx, n, f"operator {oi} ({name}) output tensor")
            ops.append(OperatorInfo(oi, name, int(code.version), _ints(op.inputs),
                                    _ints(op.outputs), op.builtinOptions))
        subgraphs.append(SubgraphInfo((sg.name or b"").decode("utf-8", "replace"), tensors, ops,
                                      _ints(sg.inputs), _ints(sg.outputs)))
    metadata = {}
    for m in model.metadata or []:
        _check_index(m.buffer, max(len(buffers), 1), "metadata buffer index")
        metadata[(m.name or b"").decode("utf-8", "replace")] = int(m.buffer)
    for idx in _ints(model.metadataBuffer):
        _check_index(idx, max(len(buffers), 1), "metadata buffer index")
    for sig in model.signatureDefs or []:
        _check_index(sig.subgraphIndex, len(subgraphs), "signature subgraph index")
        limit = len(subgraphs[sig.subgraphIndex].tensors)
        for tm in _iter(sig.inputs) + _iter(sig.outputs):
            _check_index(tm.tensorIndex, limit, "signature tensor index")
    description = (model.description or b"").decode("utf-8", "replace")
    return TfliteModel(bytes(data), subgraphs, description, metadata)


def _iter(values: Iterable[Any] | None) -> list[Any]:
    return list(values or [])


def verify_tflite(data: bytes) -> TfliteModel:
    """Verify ``data`` as a TFLite model (wire format, then semantics) and return its summary.

    Raises ``InvalidModelError`` (exit code 2) with a one-line reason on any problem.
    """
    schema = tflite_schema()
    verify_flatbuffer(data, schema)
    return _parse(bytes(data), schema)
