"""The drift defaults hold up: a steady device (predictions drawn from the baseline's own
distribution) stays under the default threshold window after window, a drifting one
(``tinyops sim --drift``'s 0.1/0.1/0.8 mix) crosses it within one window."""

from __future__ import annotations

import json

import numpy as np

from device_drivers import paths
from fleet_ops.fleet.drift import DEFAULT_THRESHOLD, DEFAULT_WINDOW, DriftWindow

CARD = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite.card.json"


def _feed(window: DriftWindow, rng: np.random.Generator, p: list[float], n: int) -> list[float]:
    labels = window.labels
    scores = []
    q = np.asarray(p, dtype=float) / float(np.sum(p))
    for cls in rng.choice(len(labels), size=n, p=q):
        top = float(rng.uniform(0.9, 1.0))  # the example's eval data: every top score >= 0.9
        rest = (1.0 - top) / (len(labels) - 1)
        window.add({lb: (top if i == cls else rest) for i, lb in enumerate(labels)})
        s = window.score()
        if s is not None:
            scores.append(s["score"])
    return scores


def test_the_bundled_card_has_a_baseline_and_steady_devices_stay_quiet() -> None:
    base = json.loads(CARD.read_text())["drift_baseline"]
    assert base["labels"] == ["normal", "imbalance", "bearing_fault"]
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(5):  # 5 devices x 3000 results, scored after every result
        scores = _feed(DriftWindow(base), rng, base["class_distribution"], 3000)
        worst = max(worst, max(scores))
    assert worst < DEFAULT_THRESHOLD, worst


def test_a_drifting_device_is_flagged_within_one_window() -> None:
    base = json.loads(CARD.read_text())["drift_baseline"]
    rng = np.random.default_rng(2)
    window = DriftWindow(base)
    _feed(window, rng, base["class_distribution"], DEFAULT_WINDOW)  # steady first
    scores = _feed(window, rng, [0.1, 0.1, 0.8], DEFAULT_WINDOW)  # then the machine drifts
    first = next(i for i, s in enumerate(scores) if s > DEFAULT_THRESHOLD)
    assert first < DEFAULT_WINDOW  # ~11 s at 10 results/s on the virtual boards
