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

import json
import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError
from device_drivers.paths import resources_dir

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.25
DEFAULT_WINDOW = 200
MIN_SAMPLES = 50
"""Defaults from a 13-minute measurement (bundled example, its card's baseline; virtual
boards on MQTT at 10 results/s): three steady boards (``--condition-mix 1,1,1``) never
scored above 0.173 (0.118 once the 200-result window is full; p99 0.108), so 0.25 leaves a
margin of 1.4x over the worst partial window and 2x over full ones — no false alarm in
39 device-minutes. A machine that starts drifting (``--drift``, 0.1/0.1/0.8) is flagged
11.4 s after the onset (window 100: 5.1 s but steady peaks at 0.17; window 400: 26.5 s)."""


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
class _Chunk:
    """Results of one message: one inference (raw) or one summary period."""

    n: int
    counts: list[int]
    hist: list[int]


@dataclass
class DriftWindow:
    """The last ``size`` results of one device, as class counts and a top-score histogram.

    Raw messages add one result each; a summary message adds its ``n`` results at once
    (its class counts and 10-bin confidence histogram, rebinned onto the baseline's edges by
    bin midpoints). Whole messages leave the window, oldest first, while the rest still
    hold ``size`` results, so a window may hold up to one summary more than ``size``.
    """

    baseline: dict[str, Any]
    size: int = DEFAULT_WINDOW
    threshold: float = DEFAULT_THRESHOLD
    chunks: deque[_Chunk] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.labels: list[str] = list(self.baseline["labels"])
        self.edges: list[float] = list(self.baseline["confidence_edges"])
        self.samples = 0
        self._counts = [0] * len(self.labels)
        self._hist = [0] * (len(self.edges) - 1)

    def _push(self, chunk: _Chunk) -> None:
        if chunk.n <= 0:
            return
        self.chunks.append(chunk)
        self.samples += chunk.n
        for i, c in enumerate(chunk.counts):
            self._counts[i] += c
        for i, h in enumerate(chunk.hist):
            self._hist[i] += h
        while self.samples - self.chunks[0].n >= self.size:
            old = self.chunks.popleft()
            self.samples -= old.n
            for i, c in enumerate(old.counts):
                self._counts[i] -= c
            for i, h in enumerate(old.hist):
                self._hist[i] -= h

    def add(self, scores: dict[str, float]) -> None:
        """One inference's scores (a raw telemetry message)."""
        label, top = max(scores.items(), key=lambda kv: kv[1])
        if label in self.labels:
            counts = [0] * len(self.labels)
            counts[self.labels.index(label)] = 1
            hist = [0] * (len(self.edges) - 1)
            hist[bin_index(float(top), self.edges)] = 1
            self._push(_Chunk(1, counts, hist))

    def add_summary(self, counts: dict[str, int], confidence_hist: Sequence[int]) -> None:
        """One summary period: class counts and the 10-bin (0.1 wide) top-score histogram.
        Labels the baseline does not know are left out of the counts, as in :meth:`add`;
        a summary without a histogram adds to the class part only."""
        known = [counts.get(label, 0) for label in self.labels]
        n = sum(known)
        hist = [0] * (len(self.edges) - 1)
        bins = len(confidence_hist)
        for i, h in enumerate(confidence_hist):
            hist[bin_index((i + 0.5) / bins, self.edges)] += h
        self._push(_Chunk(n, known, hist))

    def score(self) -> dict[str, float] | None:
        """``{"score", "classes", "confidence"}`` or None before :data:`MIN_SAMPLES`."""
        if self.samples < min(MIN_SAMPLES, self.size):
            return None
        classes = js_distance(self._counts, self.baseline["class_distribution"])
        out = {"classes": round(classes, 4)}
        if sum(self._hist) > 0:
            confidence = js_distance(self._hist, self.baseline["confidence_histogram"])
            out["confidence"] = round(confidence, 4)
        else:
            confidence = 0.0
        return {"score": round(max(classes, confidence), 4), **out}


EXAMPLE_CARD = Path("examples") / "vibration" / "model_int8.tflite.card.json"
"""The bundled example's model card: every fleet view knows its baseline."""


def card_files(extra: list[str]) -> list[str]:
    """The model cards a fleet view loads: the bundled example's, then the user's."""
    bundled = resources_dir() / EXAMPLE_CARD
    return [str(bundled), *extra] if bundled.is_file() else list(extra)


def load_baselines(cards: list[str | Path]) -> dict[str, dict[str, Any]]:
    """``{model sha256: drift baseline}`` from model card files (``*.card.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for name in cards:
        try:
            card = json.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the model card {name}: {exc}",
                             "give a .card.json written by tinyops quantize") from exc
        if isinstance(card, dict) and card.get("drift_baseline") and card.get("sha256"):
            out[card["sha256"]] = card["drift_baseline"]
        else:
            log.info("model card %s has no drift baseline (quantize again to add one)", name)
    return out
