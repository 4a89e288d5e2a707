"""One telemetry or status message as it comes from a network (MQTT), decoded with limits.

The serial parser trusts its one board; a broker carries messages from any client, so every
message the fleet view (or the bridge) takes goes through here first: at most
:data:`MAX_BYTES`, nesting at most :data:`MAX_DEPTH`, a JSON object with at most
:data:`MAX_KEYS` keys, finite numbers only (``NaN``, ``Infinity`` and ``1e999`` are refused),
``scores`` an object of 1…:data:`MAX_LABELS` clean labels (:func:`clean_text`) to finite
numbers, a ``summary`` as :func:`~device_drivers.telemetry.summary.summary_record` checks it.
A refused message raises :class:`BadMessage` whose ``reason`` is one short, fixed phrase (a
counter key: it never holds the message's own text).
"""

from __future__ import annotations

import json
import math
import unicodedata
from typing import Any

from device_drivers.telemetry.summary import summary_record

MAX_BYTES = 32 * 1024
MAX_DEPTH = 8
MAX_KEYS = 64
MAX_LABELS = 64
MAX_TEXT = 128
_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}
STATUS_FIELDS = ("device_id", "state", "board", "firmware", "model_sha256", "last_seen")


class BadMessage(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def clean_text(value: object, limit: int = MAX_TEXT) -> bool:
    """A non-empty string of at most ``limit`` characters with no control, format (the
    bidirectional overrides, zero-width characters), unassigned or line-breaking ones."""
    return (isinstance(value, str) and 0 < len(value) <= limit
            and not any(unicodedata.category(ch) in _BAD_CATEGORIES for ch in value))


def _refuse_constant(_name: str) -> Any:
    raise BadMessage("non-finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadMessage("non-finite number")
    return value


def _depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_DEPTH:
                return deepest
        elif ch in "]}":
            depth -= 1
    return deepest


def decode_object(payload: bytes | str) -> dict[str, Any]:
    """The JSON object in ``payload`` within the limits, or :class:`BadMessage`."""
    if len(payload) > MAX_BYTES:
        raise BadMessage("too large")
    try:
        text = payload.decode("utf-8") if isinstance(payload, (bytes, bytearray)) else payload
    except UnicodeDecodeError:
        raise BadMessage("not UTF-8") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise BadMessage("too deeply nested")
    try:
        obj = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except BadMessage:
        raise
    except (ValueError, RecursionError):
        raise BadMessage("not JSON") from None
    if type(obj) is not dict:
        raise BadMessage("not a JSON object")
    if len(obj) > MAX_KEYS:
        raise BadMessage("too many keys")
    return obj


def _number(value: object) -> bool:
    if type(value) is int:
        return abs(value) < 2**53
    return type(value) is float and math.isfinite(value)


def decode_telemetry(payload: bytes | str) -> dict[str, Any]:
    """A telemetry object, checked: ``{"obj", "scores" (or None), "latency_us" (or None),
    "summary" (``summary_record`` or None)}``."""
    obj = decode_object(payload)
    if "summary" in obj:
        try:
            summary = summary_record(obj)
        except (ValueError, OverflowError):
            raise BadMessage("bad summary") from None
        if summary is None or len(summary["counts"]) > MAX_LABELS or \
                not all(clean_text(k, MAX_TEXT) for k in summary["counts"]):
            raise BadMessage("bad summary")
        return {"obj": obj, "scores": None, "latency_us": None, "summary": summary}
    scores = obj.get("scores")
    if scores is not None:
        if type(scores) is not dict or not 0 < len(scores) <= MAX_LABELS or \
                not all(_number(v) for v in scores.values()):
            raise BadMessage("bad scores")
        if not all(clean_text(k) for k in scores):
            raise BadMessage("bad label")
    latency = obj.get("latency_us")
    if latency is not None and not (_number(latency) and latency >= 0):
        raise BadMessage("bad latency")
    return {"obj": obj, "scores": scores, "latency_us": latency, "summary": None}


def decode_status(payload: bytes | str) -> dict[str, Any]:
    """A device's status object: its known fields, each a clean string (or null)."""
    obj = decode_object(payload)
    out: dict[str, Any] = {}
    for key in STATUS_FIELDS:
        value = obj.get(key)
        if value is None:
            continue
        if not clean_text(value):
            raise BadMessage(f"bad status {key}")
        out[key] = value
    if "state" not in out:
        raise BadMessage("bad status state")
    return out
