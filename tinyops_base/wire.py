"""The wire format between a process and a child that runs untrusted models: data only.

Used by ``model_tools`` (the TFLM sandbox: ``tflm.py`` and ``_tflm_worker``) and by the virtual
board (``device_drivers.virtual.model`` and its interpreter ``worker``). The child runs
untrusted models in C++ that trusts the model, so whatever it sends back is treated as hostile:
nothing on this wire is ever unpickled or evaluated. A message is

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
import os
import select
import struct
import time
from collections.abc import Callable
from typing import Any, BinaryIO

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


def stream_reader(stream: BinaryIO) -> Reader:
    """``read(n)`` on a blocking binary stream (a child's stdin): EOFError when it ends."""
    def read(n: int) -> bytes:
        data = stream.read(n)
        if len(data) < n:
            raise EOFError
        return data
    return read


def fd_reader(fd: int, deadline: float) -> Reader:
    """``read(n)`` on a pipe (a child's stdout) that gives up at ``deadline``
    (``time.monotonic()``): TimeoutError then, EOFError when the child closed it."""
    def read(n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - got, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)
    return read


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
        # item by item: the message itself stays an object even if it looks like a reference
        out = {key: resolve(value) for key, value in body.items()}
    except RecursionError:
        raise WireError("header nests too deeply") from None
    if len(used) != len(arrays):
        raise WireError("the header leaves buffers unreferenced")
    return out
