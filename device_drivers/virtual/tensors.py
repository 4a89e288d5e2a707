"""Sensor window → raw input tensor, raw output tensor → class scores (pure functions)."""

from __future__ import annotations

from typing import Any

import numpy as np

_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
               "int32": (-(2**31), 2**31 - 1)}


def element_count(spec: dict[str, Any]) -> int:
    return int(np.prod(spec["shape"])) if spec["shape"] else 1


def byte_size(spec: dict[str, Any]) -> int:
    return element_count(spec) * np.dtype(spec["dtype"]).itemsize


def fit_window(window: np.ndarray, count: int) -> np.ndarray:
    """Flatten a sensor window and repeat or cut it to exactly ``count`` values."""
    flat = np.asarray(window, dtype=np.float32).reshape(-1)
    if flat.size == 0:
        return np.zeros(count, dtype=np.float32)
    if flat.size < count:
        flat = np.tile(flat, -(-count // flat.size))
    return flat[:count]


def quantize(values: np.ndarray, spec: dict[str, Any]) -> bytes:
    """Float values → the raw bytes of a tensor with ``spec``'s dtype and quantization."""
    dtype = np.dtype(spec["dtype"])
    x = fit_window(values, element_count(spec))
    if dtype.kind == "f":
        return x.astype(dtype).tobytes()
    scale = float(spec.get("scale") or 0.0)
    zero = int(spec.get("zero_point") or 0)
    q = np.round(x / scale) + zero if scale > 0 else np.round(x)
    lo, hi = _INT_RANGES.get(dtype.name, (np.iinfo(dtype).min, np.iinfo(dtype).max))
    return np.clip(q, lo, hi).astype(dtype).tobytes()


def dequantize(raw: bytes, spec: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(spec["dtype"])
    q = np.frombuffer(raw, dtype=dtype).astype(np.float64)
    scale = float(spec.get("scale") or 0.0)
    if dtype.kind != "f" and scale > 0:
        return (q - int(spec.get("zero_point") or 0)) * scale
    return q


def probabilities(values: np.ndarray) -> np.ndarray:
    """Scores as probabilities: kept when they already are, softmax otherwise."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        return v
    if np.all(v >= -1e-6) and np.all(v <= 1 + 1e-6) and abs(v.sum() - 1.0) < 0.05:
        return np.clip(v, 0.0, 1.0)
    e = np.exp(v - v.max())
    return e / e.sum()


def class_count(spec: dict[str, Any]) -> int:
    return element_count(spec)


def default_labels(n: int) -> list[str]:
    return [f"class_{i}" for i in range(n)]


def fit_labels(labels: list[str] | None, n: int) -> list[str]:
    """Exactly ``n`` labels: the given ones, cut or completed with ``class_<i>``."""
    labels = [str(x) for x in (labels or []) if str(x)]
    return labels[:n] + default_labels(n)[len(labels):]


def scores(raw: bytes, spec: dict[str, Any], labels: list[str]) -> dict[str, float]:
    p = probabilities(dequantize(raw, spec))
    names = fit_labels(labels, p.size)
    return {name: round(float(v), 4) for name, v in zip(names, p, strict=True)}
