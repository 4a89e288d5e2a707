"""What the Model page shows for an analysis or a quantization report (rows, no widgets).

One arena figure everywhere: ``arena_bytes`` as ``model_tools.analyze`` defines it (TFLM's
minimum, measured by building the model in tflite-micro, no margin; or a static estimate
when it cannot be measured), always labelled with which of the two it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.gui.widgets import human_bytes, human_count


def pct(x: Any) -> str:
    return "—" if x is None else f"{100 * float(x):.1f} %"


def arena_text(d: dict[str, Any]) -> str:
    if d.get("arena_bytes") is None:
        return "—"
    which = ("TFLM minimum, measured, no margin" if d.get("arena_method") == "measured"
             else "estimate")
    return f"{human_bytes(d.get('arena_bytes'))} ({which})"


def analysis_rows(a: dict[str, Any]) -> list[tuple[str, str]]:
    compat = a.get("tflm_compatible")
    missing = a.get("unavailable") or {}  # "not available on this system: <reason>" labels
    rows = [
        ("File", Path(str(a.get("model", ""))).name),
        ("Kind", str(a.get("kind", "")) + (f" → {a['converted']}" if a.get("converted")
                                           else "")),
        ("Size", human_bytes(a.get("flash_bytes"))),
        ("Parameters", human_count(a.get("params"))),
        ("MACs / inference", human_count(a.get("macs"))),
        ("Tensor arena", arena_text(a)),
        ("Runs in TFLM", missing.get("tflm_verdict") or (
            "unknown" if compat is None else "yes" if compat else f"no: {a.get('tflm_error')}")),
        ("SHA-256", str(a.get("sha256", ""))[:16] + "…"),
    ]
    if a.get("labels"):
        rows.append(("Labels", ", ".join(a["labels"])))
    rows += [(title, missing[key]) for key, title in (("arena_exact", "Exact arena"),
                                                     ("convert", "Keras conversion"))
             if key in missing]
    return rows


def op_rows(a: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"op": o["op"], "count": o["count"],
             "tflm": {True: "yes", False: "no"}.get(o.get("tflm"), "?")}
            for o in a.get("ops", [])]


def tensor_rows(a: dict[str, Any]) -> list[dict[str, Any]]:
    tensors = []
    for role, key in (("input", "inputs"), ("output", "outputs")):
        for t in a.get(key, []):
            q = t.get("quantization") or t.get("scale")
            tensors.append({"role": role, "name": t.get("name"), "dtype": t.get("dtype"),
                            "shape": t.get("shape"), "quant": q if q else "none"})
    return tensors


def layer_rows(a: dict[str, Any]) -> list[dict[str, Any]]:
    return [{**layer, "macs": human_count(layer.get("macs")),
             "params": human_count(layer.get("params"))} for layer in a.get("layers", [])]


def report_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"metric": "Size", "float": human_bytes(r.get("float_size")),
         "quantized": human_bytes(r.get("quantized_size"))},
        {"metric": "Accuracy", "float": pct(r.get("float_accuracy")),
         "quantized": pct(r.get("quantized_accuracy"))},
        {"metric": "Top-1 agreement", "float": "", "quantized": pct(r.get("agreement"))},
        {"metric": "Output RMSE", "float": "",
         "quantized": "—" if r.get("output_rmse") is None else f"{r['output_rmse']:.4f}"},
        {"metric": "Tensor arena", "float": "", "quantized": arena_text(r)},
        {"metric": "Runs in TFLM", "float": "",
         "quantized": {True: "yes", False: "no"}.get(r.get("tflm_compatible"), "?")},
        {"metric": "Evaluated on", "float": "",
         "quantized": f"{r.get('eval_samples')} samples ({r.get('evaluated_on')})"},
    ]


def class_rows(r: dict[str, Any]) -> list[dict[str, Any]]:
    per = r.get("per_class") or {}
    return [{"label": k, "count": v.get("count"), "float": pct(v.get("float")),
             "quantized": pct(v.get("quantized"))} for k, v in per.items()]
