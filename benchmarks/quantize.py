"""``quantize_s``: the bundled example quantized end to end, as a user runs it.

``tinyops quantize resources/examples/vibration/model.keras --calib calib.npz --eval eval.npz
--labels labels.txt -o OUT --json`` in a fresh process: TensorFlow import, conversion to
int8, device-like evaluation of float vs quantized in tflite-micro, exact arena measurement,
model card. The figure is the wall time of the whole command; the time the quantize job
reports for itself is given beside it (the rest is interpreter and CLI start-up).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from benchmarks.common import (
    EXAMPLE_DIR,
    BenchmarkError,
    Figure,
    child_env,
    last_json_line,
    median,
    python,
    run_child,
)


def _once(out_dir: Path) -> tuple[float, dict]:
    out = out_dir / "vibration_int8.tflite"
    cmd = [python(), "-m", "app.cli", "quantize", str(EXAMPLE_DIR / "model.keras"),
           "--calib", str(EXAMPLE_DIR / "calib.npz"), "--eval", str(EXAMPLE_DIR / "eval.npz"),
           "--labels", str(EXAMPLE_DIR / "labels.txt"), "-o", str(out), "--json"]
    started = time.monotonic()
    proc = run_child(cmd, env=child_env(out_dir / "home"), timeout=600)
    wall = time.monotonic() - started
    report = last_json_line(proc.stdout)
    if not out.is_file() or out.stat().st_size == 0:
        raise BenchmarkError("quantize reported success but wrote no model")
    return wall, report


def run(quick: bool) -> list[Figure]:
    walls, cores, reports = [], [], []
    for _ in range(1 if quick else 3):
        with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
            wall, report = _once(Path(tmp))
        walls.append(wall)
        reports.append(report)
        if isinstance(report.get("seconds"), (int, float)):
            cores.append(float(report["seconds"]))
    last = reports[-1]
    acc = last.get("quantized_accuracy")
    facc = last.get("float_accuracy")
    core = f"; the job's own reported time {median(cores):.1f} s" if cores else ""
    return [Figure(
        "quantize_s", median(walls), "s", None, "",
        "no target set; a cloud service (Edge Impulse, ST Dev Cloud) needs an account and "
        "an upload",
        f"`tinyops quantize` on the bundled vibration example in a fresh process, median of "
        f"{len(walls)}: TF import, int8 conversion, float vs int8 on the eval set in "
        f"tflite-micro, arena measured{core}; accuracy float {facc} → int8 {acc}, "
        f"{last.get('quantized_size')} B",
        samples=walls, extra={"job_seconds": cores})]
