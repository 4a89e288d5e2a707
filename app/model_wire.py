"""The model worker's messages: plain values on ``tinyops_base.wire`` and their checks.

``pack``/``unpack`` carry what JSON cannot (non-finite floats, dicts with keys that are not
strings) as tagged objects; ``checked`` verifies one reply from the child field by field.
Anything else is a ``wire.WireError``, and the worker that sent it is stopped.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from tinyops_base import wire

MAX_TEXT = 64 << 10
"""Longest text field in a reply (a message, a hint, a traceback)."""


def pack(value: Any) -> Any:
    """``value`` in a form ``wire.encode`` takes: non-finite floats and dicts with keys that
    are not strings are tagged (``{"_float": "nan"}``, ``{"_map": [[k, v], …]}``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return {"_float": repr(value)}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: pack(v) for k, v in value.items()}
        return {"_map": [[pack(k), pack(v)] for k, v in value.items()]}
    if isinstance(value, (list, tuple)):
        return [pack(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.generic):
        return pack(value.item())
    return value


def unpack(value: Any) -> Any:
    """The inverse of :func:`pack`, checking the tags (a bad one is a ``WireError``)."""
    if isinstance(value, dict):
        if set(value) == {"_float"}:
            if value["_float"] not in ("nan", "inf", "-inf"):
                raise wire.WireError(f"bad float tag {value['_float']!r}")
            return float(value["_float"])
        if set(value) == {"_map"}:
            items = value["_map"]
            if not isinstance(items, list) or not all(
                    isinstance(i, list) and len(i) == 2 for i in items):
                raise wire.WireError("a _map must be a list of [key, value] pairs")
            out = {}
            for key, item in items:
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise wire.WireError(f"a map key cannot be a {type(key).__name__}")
                out[key] = unpack(item)
            return out
        return {k: unpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unpack(v) for v in value]
    return value


def checked(msg: dict[str, Any], job: int) -> dict[str, Any]:
    """One reply, checked: the right job, a known kind, each field of its type."""
    def need(key: str, types: type | tuple[type, ...], optional: bool = False) -> Any:
        value = msg.get(key)
        if value is None and optional:
            return None
        if not isinstance(value, types) or (isinstance(value, str) and len(value) > MAX_TEXT):
            raise wire.WireError(f"reply field {key!r} is not a valid {types}")
        return value

    kind = msg.get("kind")
    if kind not in ("progress", "ok", "error"):
        raise wire.WireError(f"unknown reply kind {kind!r}")
    if type(msg.get("job")) is not int or msg["job"] != job:
        raise wire.WireError(f"a reply for job {msg.get('job')!r}, expected {job}")
    if kind == "progress":
        fraction = need("fraction", (int, float))
        if isinstance(fraction, bool) or not 0.0 <= fraction <= 1.0:
            raise wire.WireError(f"progress fraction {fraction!r} is not in 0..1")
        need("message", str)
    elif kind == "error":
        need("message", str)
        need("hint", str, optional=True)
        need("detail", str)
        need("cancelled", bool)
        need("expected", bool)
    else:
        msg["result"] = unpack(msg.get("result"))
    return msg
