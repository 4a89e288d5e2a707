"""The human table and the JSON object of a benchmark run."""

from __future__ import annotations

import textwrap
from typing import Any

from benchmarks.common import Figure


def _met_text(met: bool | None) -> str:
    return {True: "yes", False: "NO", None: "—"}[met]


def render_table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "target", "met", "limit / peer")]
    for f in figures:
        rows.append((f.key, f.value_text(), f.target_text(), _met_text(f.met), f.reference))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for n, row in enumerate(rows):
        cells = [row[i].ljust(widths[i]) for i in range(4)]
        lines.append("  ".join(cells) + "  " + row[4])
        if n == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 30)
    notes = [f for f in figures if f.note]
    if notes:
        lines.append("")
        lines.append("how each figure was measured:")
        for f in notes:
            lines.extend(textwrap.wrap(f"{f.key}: {f.note}", width=100,
                                       initial_indent="  ", subsequent_indent="    "))
    return "\n".join(lines)


def to_json(figures: list[Figure], host: dict[str, Any], quick: bool, elapsed: float,
            errors: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in figures:
        v = f.value
        out[f.key] = round(v, 4) if isinstance(v, float) else v
    out["targets"] = {f.key: {"target": f.target, "op": f.op, "met": f.met}
                      for f in figures if f.op}
    out["details"] = {f.key: {"unit": f.unit, "reference": f.reference, "note": f.note,
                              "samples": [round(s, 4) for s in f.samples], **f.extra}
                      for f in figures}
    out["machine"] = host
    out["mode"] = "quick" if quick else "full"
    out["duration_s"] = round(elapsed, 1)
    out["errors"] = errors
    return out
