"""Summary-mode telemetry lines (``resources/protocol/runtime_group.md``): recognised and
checked here, beside the parser (which turns their numbers into ``summary/…`` channels like
any nested JSON object), for the fleet view and anyone reading the summaries themselves."""

from __future__ import annotations

import math


def summary_record(obj: dict) -> dict | None:
    """The ``summary`` of a summary-mode telemetry object (``runtime_group.md``), checked:
    ``{"n", "counts": {label: int}, "confidence_hist": [int × 10], "latency_us_p50",
    "latency_us_p95", "period_ms"}``; None for a per-inference line. ``ValueError`` names
    what is wrong with a malformed one. (Its numbers also become ``summary/…`` channels.)"""
    s = obj.get("summary")
    if s is None:
        return None
    if type(s) is not dict:
        raise ValueError("summary is not an object")

    def count(v: object) -> int:
        if type(v) is not int or v < 0:
            raise ValueError(f"summary count {v!r} is not a non-negative integer")
        return v

    counts = s.get("counts", {})
    if type(counts) is not dict or not all(type(k) is str for k in counts):
        raise ValueError("summary counts is not an object of label: count")
    hist = s.get("confidence_hist", [])
    if type(hist) is not list or len(hist) not in (0, 10):
        raise ValueError("summary confidence_hist is not a list of 10 counts")
    out: dict = {"counts": {k: count(v) for k, v in counts.items()},
                 "confidence_hist": [count(v) for v in hist]}
    for key in ("n", "period_ms", "latency_us_p50", "latency_us_p95"):
        v = s.get(key)
        if v is not None and not (type(v) in (int, float) and math.isfinite(v) and v >= 0):
            raise ValueError(f"summary {key} {v!r} is not a non-negative number")
        out[key] = v
    if out["n"] is None:
        out["n"] = sum(out["counts"].values())
    return out
