"""Drift of a device's live results from the baseline in its model card.

The baseline (written by ``tinyops quantize``, ``drift_baseline`` in the card) holds the
distribution of the predicted class and a histogram of the top score on the evaluation
data. A device's rolling window of live results gives the same two distributions; the
drift score is the larger of their two **Jensen–Shannon distances** (base-2 logarithm, so
0 = identical, 1 = disjoint). Why JS and not PSI: it is bounded and symmetric, so one
threshold means the same for every model and window, and it is defined when a bin is empty
on one side (a class a device never predicts in its window, a confidence bin the eval data
never hit) where PSI divides by zero or needs an arbitrary epsilon that then dominates it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

DEFAULT_THRESHOLD = 0.2
DEFAULT_WINDOW = 200
MIN_SAMPLES = 50


def js_distance(p: Sequence[float], q: Sequence[float]) -> float:
    """Jensen–Shannon distance (sqrt of the divergence, log base 2) of two histograms."""
    sp, sq = float(sum(p)), float(sum(q))
    if sp <= 0 or sq <= 0 or len(p) != len(q):
        raise ValueError("two non-empty histograms of the same length are needed")
    div = 0.0
    for a, b in zip(p, q, strict=True):
        a, b = a / sp, b / sq
        m = (a + b) / 2
        if a > 0:
            div += 0.5 * a * math.log2(a / m)
        if b > 0:
            div += 0.5 * b * math.log2(b / m)
    return math.sqrt(max(0.0, min(1.0, div)))


def bin_index(value: float, edges: Sequence[float]) -> int:
    """The histogram bin of ``value`` (``len(edges) - 1`` bins, the last one closed)."""
    for i in range(len(edges) - 2, -1, -1):
        if value >= edges[i]:
            return i
    return 0


@dataclass
class DriftWindow:
    """The last ``size`` (class index, top score) results of one device."""

    baseline: dict[str, Any]
    size: int = DEFAULT_WINDOW
    threshold: float = DEFAULT_THRESHOLD
    results: deque[tuple[int, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.results = deque(maxlen=self.size)
        self.labels: list[str] = list(self.baseline["labels"])

    def add(self, scores: dict[str, float]) -> None:
        label, top = max(scores.items(), key=lambda kv: kv[1])
        if label in self.labels:
            self.results.append((self.labels.index(label), float(top)))

    def score(self) -> dict[str, float] | None:
        """``{"score", "classes", "confidence"}`` or None before :data:`MIN_SAMPLES`."""
        if len(self.results) < min(MIN_SAMPLES, self.size):
            return None
        counts = [0] * len(self.labels)
        edges = self.baseline["confidence_edges"]
        hist = [0] * (len(edges) - 1)
        for cls, top in self.results:
            counts[cls] += 1
            hist[bin_index(top, edges)] += 1
        classes = js_distance(counts, self.baseline["class_distribution"])
        confidence = js_distance(hist, self.baseline["confidence_histogram"])
        return {"score": round(max(classes, confidence), 4), "classes": round(classes, 4),
                "confidence": round(confidence, 4)}
