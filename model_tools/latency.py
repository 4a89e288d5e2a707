"""Latency estimate for a board: MACs x cycles per MAC of its core family / its clock.

The figures and their sources are data (``resources/boards/latency/latency.json``: per core
family a cycles-per-MAC range with ``source`` / ``derived`` / ``checked``, per board its core
and ``clock_mhz``). ``estimate_latency`` gives a range in milliseconds; ``with_measured``
puts a board's measured latency (the runtime's stats: ``last_latency_us``) beside it.
model_tools does not read the board registry: boards are named by id.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

DATA_FILE = Path(__file__).resolve().parents[1] / "resources" / "boards" / "latency" / \
    "latency.json"
FAMILIES = ("cortex-m0plus", "cortex-m4f", "cortex-m7", "cortex-m33", "cortex-m55",
            "esp32-s3", "riscv-rv32imc")
_FLOAT = ("float32", "float16")


@functools.lru_cache(maxsize=4)
def load_data(path: str | None = None) -> dict[str, Any]:
    """The latency data file (cached)."""
    data = json.loads(Path(path or DATA_FILE).read_text())
    if not isinstance(data, dict):
        raise ValueError("latency data: the file must hold a JSON object")
    for name, core in data["cores"].items():
        lo, hi = core["cycles_per_mac"]
        if not (0 < lo <= hi) or not core.get("source"):
            raise ValueError(f"latency data: core {name} needs 0 < low <= high and a source")
    return data


def board_core(board_id: str, data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """``{core, clock_mhz, source}`` of a board, or None if its core/clock is not known."""
    found = (data or load_data())["boards"].get(board_id)
    return found if isinstance(found, dict) else None


def estimate_latency(macs: int, *, board: str | None = None, core: str | None = None,
                     clock_mhz: float | None = None, dtype: str = "int8",
                     data: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Estimated inference time of a model with ``macs`` multiply-accumulates, as
    ``{low_ms, high_ms, core, clock_mhz, cycles_per_mac, source, ...}``. ``board`` (an id)
    gives the core and clock; ``core``/``clock_mhz`` override. None if the board is unknown.
    ``dtype``: the model's activation type; float models get the data's ``float32_factor``."""
    data = data or load_data()
    b = board_core(board, data) if board else None
    core = core or (b or {}).get("core")
    clock = clock_mhz or (b or {}).get("clock_mhz")
    if core is None or clock is None:
        return None
    if core not in data["cores"]:
        raise ValueError(f"unknown core family {core!r} (known: {', '.join(data['cores'])})")
    entry = data["cores"][core]
    lo, hi = entry["cycles_per_mac"]
    factor = (1.0, 1.0)
    notes = [f"{core}: {lo}-{hi} cycles per int8 MAC"]
    if dtype.lower() in _FLOAT:
        f_lo, f_hi = data["float32_factor"]["factor"]
        factor = (float(f_lo), float(f_hi))
        notes.append(f"float model: x{factor[0]:g}-{factor[1]:g} "
                     "(TFLM's reference float kernels; derived)")
    cycles_per_ms = float(clock) * 1000.0
    return {"board": board, "core": core, "clock_mhz": clock, "macs": int(macs),
            "cycles_per_mac": [lo, hi], "dtype": dtype.lower(),
            "low_ms": round(macs * lo * factor[0] / cycles_per_ms, 3),
            "high_ms": round(macs * hi * factor[1] / cycles_per_ms, 3),
            "source": entry["source"], "derived": entry.get("derived"),
            "checked": bool(entry.get("checked", False)),
            "clock_source": (b or {}).get("source"), "note": "; ".join(notes)}


def with_measured(estimate: dict[str, Any] | None, last_latency_us: int | None
                  ) -> dict[str, Any]:
    """The estimate and a connected board's measured latency side by side:
    ``{estimate, measured_ms, ratio (measured / estimate midpoint), within}``."""
    measured = None if not last_latency_us or last_latency_us <= 0 else last_latency_us / 1000.0
    out: dict[str, Any] = {"estimate": estimate, "measured_ms": measured, "ratio": None,
                           "within": None}
    if estimate is not None and measured is not None:
        mid = (estimate["low_ms"] + estimate["high_ms"]) / 2.0
        out["ratio"] = round(measured / mid, 3) if mid > 0 else None
        out["within"] = estimate["low_ms"] <= measured <= estimate["high_ms"]
    return out


def format_estimate(est: dict[str, Any] | None) -> str:
    if est is None:
        return "no latency estimate (the board's core or clock is not in the latency data)"
    return (f"{est['low_ms']:.3g}-{est['high_ms']:.3g} ms at {est['clock_mhz']} MHz "
            f"({est['note']}; source: {est['source'][:80]}"
            f"{'...' if len(est['source']) > 80 else ''})")
