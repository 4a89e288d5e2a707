"""What the TFLM sandbox's parent accepts from its ``_tflm_worker`` child.

The message format itself (JSON header plus raw buffers, size-capped, never pickle) is
:mod:`tinyops_base.wire`; this module checks that a decoded reply is exactly what the request
asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tinyops_base.wire import (
    DTYPES,
    MAGIC,
    MAX_HEADER,
    MAX_NDIM,
    MAX_PAYLOAD,
    WireError,
    encode,
    read_message,
)

__all__ = ["DTYPES", "MAGIC", "MAX_HEADER", "MAX_NDIM", "MAX_PAYLOAD", "WireError",
           "check_reply", "encode", "read_message"]

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
