"""``models_analyze_s`` / ``models_quantize_s``: analyze and quantize time per corpus model.

The corpus (``model_tools.corpus``: generated architectures, random weights) is built once
into ``TINYOPS_CORPUS_DIR`` (default ``~/.cache/tinyops/bench-corpus``) and reused. Per
model, in this process (TensorFlow imported once, so the times are the tools' own, without
interpreter start-up): ``analyze`` of the float TFLite model (TFLM check and exact arena),
and ``quantize`` of the Keras model to int8 with its calibration samples (conversion,
float-vs-int8 run, analysis with exact arena). The figure is the slowest model; every
model's times, sizes, arenas, TFLM verdict and estimated latency on two boards are in
``extra["models"]`` (the issue 14 table). ``--quick`` uses three small models.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import Figure

QUICK = ("ds_cnn", "conv1d_accel", "autoencoder")
BOARDS = ("nucleo_l4r5zi", "esp32s3_devkitc")  # Cortex-M4F 120 MHz, ESP32-S3 240 MHz


def corpus_dir() -> Path:
    env = os.environ.get("TINYOPS_CORPUS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "tinyops" / "bench-corpus"


def _latency(macs: int, dtype: str) -> dict[str, Any]:
    from model_tools.latency import estimate_latency

    out = {}
    for board in BOARDS:
        est = estimate_latency(macs, board=board, dtype=dtype)
        out[board] = None if est is None else [est["low_ms"], est["high_ms"]]
    return out


def _verdict(result: dict[str, Any]) -> str:
    if result.get("tflm_compatible"):
        return "runs"
    v = result.get("tflm_verdict") or {}
    if v:
        return f"fails: {v['kind']} at op {v['op_index']} {v['op']}"
    return f"fails: {result.get('tflm_error')}"


def measure(names: list[str], folder: Path) -> list[dict[str, Any]]:
    from model_tools import corpus
    from model_tools.analyze import analyze
    from model_tools.quantize import quantize

    rows = []
    for name in names:
        m = corpus.build_one(name, folder)
        t0 = time.perf_counter()
        fa = analyze(m.float_tflite)
        t_analyze = time.perf_counter() - t0
        with tempfile.TemporaryDirectory(prefix="bench-models-") as tmp:
            t0 = time.perf_counter()
            rep = quantize(m.keras, m.calib, output=Path(tmp) / f"{name}_int8.tflite")
            t_quantize = time.perf_counter() - t0
            qa = analyze(rep.output, measure=False) if rep.output else {}
        rows.append({
            "model": name, "analyze_s": round(t_analyze, 2), "quantize_s": round(t_quantize, 2),
            "float_size": fa["flash_bytes"], "int8_size": rep.quantized_size,
            "macs": fa["macs"], "params": fa["params"],
            "float_arena": fa["arena_bytes"], "float_arena_method": fa["arena_method"],
            "int8_arena": rep.arena_bytes, "int8_arena_method": rep.arena_method,
            "float_tflm": _verdict(fa), "int8_tflm": _verdict(qa or {
                "tflm_compatible": rep.tflm_compatible, "tflm_verdict": rep.tflm_verdict,
                "tflm_error": rep.tflm_error}),
            "agreement_calib": rep.agreement, "accuracy": None,
            "latency_float_ms": _latency(fa["macs"], "float32"),
            "latency_int8_ms": _latency(fa["macs"], "int8")})
    return rows


def run(quick: bool) -> list[Figure]:
    from model_tools.corpus import ARCHITECTURES

    names = list(QUICK if quick else ARCHITECTURES)
    rows = measure(names, corpus_dir())
    slow_a = max(rows, key=lambda r: r["analyze_s"])
    slow_q = max(rows, key=lambda r: r["quantize_s"])
    per = ", ".join(f"{r['model']} {r['analyze_s']}/{r['quantize_s']} s" for r in rows)
    note = (f"{len(rows)} corpus models (random weights), in one process; analyze/quantize per "
            f"model: {per}")
    return [
        Figure("models_analyze_s", slow_a["analyze_s"], "s", None, "", "no target set",
               f"slowest analyze (float TFLite, TFLM check + exact arena): {slow_a['model']}; "
               + note, samples=[r["analyze_s"] for r in rows], extra={"models": rows}),
        Figure("models_quantize_s", slow_q["quantize_s"], "s", None, "", "no target set",
               f"slowest quantize (int8, float-vs-int8 run, exact arena): {slow_q['model']}",
               samples=[r["quantize_s"] for r in rows]),
    ]
