"""The drift baseline stored in a model card: what the model's outputs look like on the
evaluation data, for the fleet view to compare live results with (``fleet_ops.fleet.drift``
reads exactly these keys; nothing else is shared between the two)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

CONFIDENCE_EDGES = [round(0.1 * i, 1) for i in range(11)]


def drift_baseline(outputs: np.ndarray, labels: Sequence[str] | None) -> dict[str, Any] | None:
    """Class distribution of the top-1 prediction and top-score histogram of ``outputs``
    (N × classes, dequantized); None for a model without class outputs."""
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    if len(out) == 0 or out.shape[1] < 2:
        return None
    names = list(labels) if labels and len(labels) == out.shape[1] else [
        str(i) for i in range(out.shape[1])]
    top = out.argmax(axis=1)
    conf = np.clip(out.max(axis=1), 0.0, 1.0)
    counts = np.bincount(top, minlength=out.shape[1])
    hist, _ = np.histogram(conf, bins=CONFIDENCE_EDGES)
    return {"labels": names, "samples": len(out),
            "class_distribution": [round(float(c) / len(out), 6) for c in counts],
            "confidence_edges": CONFIDENCE_EDGES,
            "confidence_histogram": [round(float(h) / len(out), 6) for h in hist],
            "metric": "jensen-shannon distance, log base 2 (fleet_mqtt.md)"}
