"""What the virtual board accepts from its interpreter child: data only, checked, size-capped.

The child (:mod:`device_drivers.virtual.worker`) runs uploaded models, which nobody vetted,
in C++ that trusts them; whatever it sends back is treated as hostile. Messages use the
shared format of :mod:`tinyops_base.wire` (JSON header plus raw buffers: never pickle, never
evaluated), at most :data:`MAX_REPLY` bytes of buffers, and each reply must be exactly what
the request asks for:

- ``ready``: ``{"ready": true, "backend": text}``
- ``load``: ``{"ok": true, "inputs": [spec…], "outputs": [spec…], "arena_used": int,
  "backend": text}``, a spec being ``{name, dtype, shape, scale, zero_point}``
- ``infer``: ``{"ok": true, "output": bytes, "latency_us": int}``, the output exactly the
  size of the loaded model's first output tensor
- any request: ``{"ok": false, "code": text, "message": text, "needed": int | null}``

Anything else is a :class:`~tinyops_base.wire.WireError`; the board then kills the child.
"""

from __future__ import annotations

import math
from typing import Any

from tinyops_base.wire import DTYPES, MAX_NDIM, WireError

MAX_REPLY = 64 << 20
"""Largest raw payload of one reply (an output tensor); boards have far less RAM."""
MAX_TEXT = 4096
"""Longest name, message or back-end label accepted."""
MAX_TENSORS = 64
_SPEC_KEYS = {"name", "dtype", "shape", "scale", "zero_point"}


def _int(value: Any, where: str, lo: int = 0, hi: int = 1 << 40) -> int:
    if type(value) is not int or not lo <= value <= hi:
        raise WireError(f"{where} must be an integer in [{lo}, {hi}], not {value!r}")
    return value


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise WireError(f"{where} must be text of at most {MAX_TEXT} characters")
    return value


def tensor_bytes(spec: dict[str, Any]) -> int:
    """Size in bytes of a (checked) tensor spec."""
    import numpy as np

    size = np.dtype(spec["dtype"]).itemsize
    for dim in spec["shape"]:
        size *= dim
    return int(size)


def check_spec(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or set(spec) != _SPEC_KEYS:
        raise WireError(f"{where}: a tensor spec must have exactly {sorted(_SPEC_KEYS)}")
    _text(spec["name"], f"{where}.name")
    if spec["dtype"] not in DTYPES:
        raise WireError(f"{where}: dtype {spec['dtype']!r} is not allowed")
    shape = spec["shape"]
    if not isinstance(shape, list) or len(shape) > MAX_NDIM:
        raise WireError(f"{where}: bad shape {shape!r}")
    for i, dim in enumerate(shape):
        _int(dim, f"{where}.shape[{i}]", 0, 1 << 31)
    scale = spec["scale"]
    if type(scale) not in (int, float) or not math.isfinite(scale):
        raise WireError(f"{where}: scale must be a finite number")
    _int(spec["zero_point"], f"{where}.zero_point", -(1 << 31), (1 << 31) - 1)
    if tensor_bytes(spec) > MAX_REPLY:
        raise WireError(f"{where}: a tensor of {tensor_bytes(spec)} bytes is too large")
    return spec


def _check_error(reply: dict[str, Any]) -> dict[str, Any]:
    if set(reply) != {"ok", "code", "message", "needed"}:
        raise WireError("an error reply must be exactly {ok, code, message, needed}")
    _text(reply["code"], "code")
    _text(reply["message"], "message")
    if reply["needed"] is not None:
        _int(reply["needed"], "needed")
    return reply


def check_ready(reply: dict[str, Any]) -> dict[str, Any]:
    if set(reply) != {"ready", "backend"} or reply["ready"] is not True:
        raise WireError("the first message must be exactly {ready: true, backend}")
    _text(reply["backend"], "backend")
    return reply


def check_load(reply: dict[str, Any]) -> dict[str, Any]:
    if reply.get("ok") is False:
        return _check_error(reply)
    if (set(reply) != {"ok", "inputs", "outputs", "arena_used", "backend"}
            or reply["ok"] is not True):
        raise WireError("a load reply must be exactly "
                        "{ok, inputs, outputs, arena_used, backend}")
    for side in ("inputs", "outputs"):
        specs = reply[side]
        if not isinstance(specs, list) or not 1 <= len(specs) <= MAX_TENSORS:
            raise WireError(f"load reply: {side} must list 1 to {MAX_TENSORS} tensor specs")
        for i, spec in enumerate(specs):
            check_spec(spec, f"load reply {side}[{i}]")
    _int(reply["arena_used"], "arena_used")
    _text(reply["backend"], "backend")
    return reply


def check_infer(reply: dict[str, Any], output: dict[str, Any]) -> dict[str, Any]:
    """``reply`` to an infer on a model whose first output tensor is ``output``."""
    if reply.get("ok") is False:
        return _check_error(reply)
    if set(reply) != {"ok", "output", "latency_us"} or reply["ok"] is not True:
        raise WireError("an infer reply must be exactly {ok, output, latency_us}")
    want = tensor_bytes(output)
    if not isinstance(reply["output"], bytes) or len(reply["output"]) != want:
        got = len(reply["output"]) if isinstance(reply["output"], bytes) else "no"
        raise WireError(f"infer reply: output of {got} bytes, the output tensor has {want}")
    _int(reply["latency_us"], "latency_us")
    return reply
