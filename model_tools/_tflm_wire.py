"""The wire format between ``tflm.py`` and its ``_tflm_worker`` child: data only, never code.

The worker runs untrusted models in C++ that trusts them, so whatever it sends back is treated
as hostile: nothing on this wire is ever unpickled or evaluated. A message is

    b"TFW1" | u32 header length | header (UTF-8 JSON object) | raw buffers, back to back

The header is the message itself (a JSON object) plus ``"_buffers": [{"dtype", "shape"}, …]``;
an array inside the message is written as ``{"_nd": i}`` (buffer ``i``), a ``bytes`` value as
``{"_bytes": i}`` (a ``uint8`` buffer). Buffers are C-ordered raw bytes of a dtype from a fixed
list (no object dtype can be expressed); their sizes follow from dtype and shape.

Everything is checked on receipt, before anything is allocated or decoded: the magic, the
header size (``MAX_HEADER``), the JSON, every buffer descriptor (known dtype, at most
``MAX_NDIM`` non-negative integer dimensions) and the total buffer size (``max_payload``).
Any violation is a :class:`WireError`; the reader then treats the stream as unusable.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from typing import Any

import numpy as np

MAGIC = b"TFW1"
_HEAD = struct.Struct("<4sI")
MAX_HEADER = 1 << 20
"""Largest JSON header accepted (1 MiB): specs and messages, never tensor data."""
MAX_PAYLOAD = 1 << 30
"""Default cap on the raw buffers of one message (1 GiB)."""
MAX_NDIM = 8
DTYPES = frozenset({"bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64",
                    "uint64", "float16", "float32", "float64"})

Reader = Callable[[int], bytes]
"""``read(n)`` returns exactly ``n`` bytes (or raises EOFError / TimeoutError)."""


class WireError(ValueError):
    """A message that does not follow the format (or exceeds its limits)."""


def encode(message: dict[str, Any]) -> bytes:
    """One framed message; ``np.ndarray`` and ``bytes`` values travel as raw buffers."""
    buffers: list[np.ndarray] = []

    def walk(value: Any) -> Any:
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            if arr.dtype.name not in DTYPES:
                raise WireError(f"dtype {arr.dtype} cannot be sent")
            buffers.append(arr)
            return {"_nd": len(buffers) - 1}
        if isinstance(value, (bytes, bytearray, memoryview)):
            buffers.append(np.frombuffer(bytes(value), dtype=np.uint8))
            return {"_bytes": len(buffers) - 1}
        if isinstance(value, dict):
            return {str(k): walk(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [walk(v) for v in value]
        if isinstance(value, np.generic):
            return value.item()
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise WireError(f"a {type(value).__name__} cannot be sent")

    body = walk(message)
    body["_buffers"] = [{"dtype": b.dtype.name, "shape": list(b.shape)} for b in buffers]
    header = json.dumps(body, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(header) > MAX_HEADER:
        raise WireError(f"header of {len(header)} bytes exceeds {MAX_HEADER}")
    return b"".join([_HEAD.pack(MAGIC, len(header)), header, *(b.tobytes() for b in buffers)])


def _descriptor(item: Any) -> tuple[np.dtype, tuple[int, ...], int]:
    if not isinstance(item, dict) or set(item) != {"dtype", "shape"}:
        raise WireError("a buffer descriptor must be {dtype, shape}")
    dtype, shape = item["dtype"], item["shape"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise WireError(f"buffer dtype {dtype!r} is not allowed")
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(type(d) is int and 0 <= d < 1 << 40 for d in shape)):
        raise WireError(f"buffer shape {shape!r} is not a list of at most {MAX_NDIM} sizes")
    dt = np.dtype(dtype)
    nbytes = dt.itemsize
    for d in shape:
        nbytes *= d
    return dt, tuple(shape), nbytes


def _reject_constant(name: str) -> Any:
    raise WireError(f"{name} is not allowed in a header")


def read_message(read: Reader, *, max_payload: int = MAX_PAYLOAD) -> dict[str, Any]:
    """Read and check one message; arrays come back read-only, ``bytes`` as ``bytes``."""
    magic, size = _HEAD.unpack(read(_HEAD.size))
    if magic != MAGIC:
        raise WireError(f"bad frame start {magic!r} (expected {MAGIC!r})")
    if size > MAX_HEADER:
        raise WireError(f"header of {size} bytes exceeds the limit of {MAX_HEADER}")
    raw = read(size)
    try:
        body = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError(f"header is not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("_buffers"), list):
        raise WireError("header must be an object with a _buffers list")
    specs = [_descriptor(item) for item in body.pop("_buffers")]
    total = sum(n for _, _, n in specs)
    if total > max_payload:
        raise WireError(f"buffers of {total} bytes exceed the limit of {max_payload}")
    arrays = [np.frombuffer(read(n), dtype=dt).reshape(shape) if n else np.zeros(shape, dt)
              for dt, shape, n in specs]
    used: set[int] = set()

    def resolve(value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and ("_nd" in value or "_bytes" in value):
                key = "_nd" if "_nd" in value else "_bytes"
                i = value[key]
                if type(i) is not int or not 0 <= i < len(arrays) or i in used:
                    raise WireError(f"bad buffer reference {value!r}")
                used.add(i)
                if key == "_nd":
                    return arrays[i]
                if arrays[i].dtype != np.uint8 or arrays[i].ndim != 1:
                    raise WireError("a bytes value must be a 1-d uint8 buffer")
                return arrays[i].tobytes()
            return {k: resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v) for v in value]
        return value

    try:
        out = resolve(body)
    except RecursionError:
        raise WireError("header nests too deeply") from None
    if len(used) != len(arrays):
        raise WireError("the header leaves buffers unreferenced")
    return out


# -- what the parent accepts from the worker --------------------------------------------------
_ERROR_KEYS = {"ok", "error", "exit_code", "hint", "trace"}
_SPEC_KEYS = {"dtype", "shape", "scales", "zero_points"}


def _is_int(v: Any) -> bool:
    return type(v) is int


def _check_spec(spec: Any, where: str) -> None:
    if not isinstance(spec, dict) or set(spec) != _SPEC_KEYS:
        raise WireError(f"{where}: a tensor spec must have exactly {sorted(_SPEC_KEYS)}")
    if spec["dtype"] not in DTYPES:
        raise WireError(f"{where}: dtype {spec['dtype']!r} is not allowed")
    shape = spec["shape"]
    if (not isinstance(shape, list) or len(shape) > MAX_NDIM
            or not all(_is_int(d) and 0 <= d < 1 << 31 for d in shape)):
        raise WireError(f"{where}: bad shape {shape!r}")
    if not isinstance(spec["scales"], list) or not all(
            isinstance(s, float) for s in spec["scales"]):
        raise WireError(f"{where}: scales must be a list of numbers")
    if not isinstance(spec["zero_points"], list) or not all(
            _is_int(z) for z in spec["zero_points"]):
        raise WireError(f"{where}: zero points must be a list of integers")


def check_reply(cmd: str, reply: dict[str, Any], *, n_inputs: int | None = None,
                n_outputs: int | None = None, n_samples: int | None = None) -> dict[str, Any]:
    """``reply`` if it is exactly what ``cmd`` answers, else :class:`WireError`.

    ``n_inputs``/``n_outputs``: tensor counts the verified model declares; ``n_samples``: the
    batch size of a ``run`` (each output array must be ``(n_samples, *spec shape)``).
    """
    ok = reply.get("ok")
    if ok is False:
        if not set(reply) <= _ERROR_KEYS or not isinstance(reply.get("error"), str):
            raise WireError("an error reply must be {ok, error, exit_code, hint, trace}")
        for key in ("hint", "trace"):
            if reply.get(key) is not None and not isinstance(reply[key], str):
                raise WireError(f"error reply: {key} must be text")
        if reply.get("exit_code") is not None and not _is_int(reply["exit_code"]):
            raise WireError("error reply: exit_code must be an integer")
        return reply
    if ok is not True:
        raise WireError("a reply must say ok: true or false")
    expected = {"load": {"ok"}, "build": {"ok", "inputs", "outputs"},
                "run": {"ok", "inputs", "outputs", "y"}}.get(cmd)
    if expected is None or set(reply) != expected:
        raise WireError(f"a {cmd} reply must have exactly {sorted(expected or ())}")
    if cmd == "load":
        return reply
    for side, count in (("inputs", n_inputs), ("outputs", n_outputs)):
        specs = reply[side]
        if not isinstance(specs, list) or (count is not None and len(specs) != count):
            raise WireError(f"{cmd} reply: {side} must list {count} tensor specs")
        for i, spec in enumerate(specs):
            _check_spec(spec, f"{cmd} reply {side}[{i}]")
    if cmd == "run":
        ys, outs = reply["y"], reply["outputs"]
        if not isinstance(ys, list) or len(ys) != len(outs):
            raise WireError(f"run reply: y must hold one array per output ({len(outs)})")
        for j, (y, spec) in enumerate(zip(ys, outs, strict=True)):
            want = (n_samples, *spec["shape"])
            if not isinstance(y, np.ndarray) or y.dtype.name != spec["dtype"] or y.shape != want:
                got = (f"{y.dtype.name} {y.shape}" if isinstance(y, np.ndarray)
                       else type(y).__name__)
                raise WireError(f"run reply: y[{j}] is {got}, expected {spec['dtype']} {want}")
    return reply
