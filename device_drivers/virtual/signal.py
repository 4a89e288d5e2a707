"""Synthetic 3-axis vibration of a rotating machine whose condition changes over time.

The virtual board feeds these windows to its model; the bundled example model is trained
on the same generator (``resources/examples/vibration/generate.py``), so the live demo
shows real classifications of a signal the model has never seen sample for sample.

Physics, roughly: a shaft turning at ``rpm`` gives a 1x component; an *imbalance* makes
that 1x line large on the radial axes (x, y); a *bearing fault* (outer race) adds short
impacts at the ball-pass frequency that ring a structural resonance, so energy appears
high in the spectrum in bursts. All amplitudes are in g.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

STATES: tuple[str, ...] = ("normal", "imbalance", "bearing_fault")
SAMPLE_RATE_HZ = 1000.0
WINDOW = 128
AXES = 3


@dataclass
class VibrationSource:
    """Generates windows of shape ``(n, 3)`` (float32, g) for a given machine state."""

    seed: int = 0
    rpm: float = 2940.0
    sample_rate_hz: float = SAMPLE_RATE_HZ
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def window(self, state: str | int, n: int = WINDOW) -> np.ndarray:
        idx = STATES.index(state) if isinstance(state, str) else int(state)
        rng = self._rng
        t = (np.arange(n) / self.sample_rate_hz) + rng.uniform(0, 10)
        f1 = self.rpm / 60.0 * rng.uniform(0.97, 1.03)
        phase = rng.uniform(0, 2 * np.pi, size=AXES)
        base = 0.05 * rng.uniform(0.7, 1.3)
        x = np.empty((n, AXES), dtype=np.float64)
        for axis in range(AXES):
            radial = 1.0 if axis < 2 else 0.3
            x[:, axis] = base * radial * np.sin(2 * np.pi * f1 * t + phase[axis])
            x[:, axis] += 0.3 * base * np.sin(2 * np.pi * 2 * f1 * t + 2 * phase[axis])
        if idx == 1:  # imbalance: strong 1x on the radial axes, phase-shifted by 90 degrees
            amp = rng.uniform(0.3, 0.6)
            x[:, 0] += amp * np.sin(2 * np.pi * f1 * t + phase[0])
            x[:, 1] += amp * np.cos(2 * np.pi * f1 * t + phase[0])
            x[:, 2] += 0.1 * amp * np.sin(2 * np.pi * f1 * t + phase[2])
        elif idx == 2:  # bearing fault: impacts at ~3.6x ringing a ~310 Hz resonance
            bpfo = 3.58 * f1
            resonance = rng.uniform(280, 340)
            since = np.mod(t, 1.0 / bpfo)
            ring = np.exp(-since * 90.0) * np.sin(2 * np.pi * resonance * since)
            amp = rng.uniform(0.25, 0.5)
            for axis in range(AXES):
                x[:, axis] += amp * (1.0 if axis != 1 else 0.6) * ring
        x += rng.normal(0.0, 0.02, size=x.shape)
        x[:, 2] += 1.0  # gravity on z
        return x.astype(np.float32)

    def dataset(self, per_class: int, n: int = WINDOW) -> tuple[np.ndarray, np.ndarray]:
        """``per_class`` windows of each state, shuffled: ``x`` (N, n, 3) float32, ``y`` int."""
        xs = [self.window(s, n) for s in range(len(STATES)) for _ in range(per_class)]
        ys = [s for s in range(len(STATES)) for _ in range(per_class)]
        order = self._rng.permutation(len(xs))
        return np.stack(xs)[order], np.asarray(ys, dtype=np.int64)[order]


@dataclass
class StateSchedule:
    """Which state the machine is in at time ``t`` (seconds): dwell 4-12 s, then change."""

    seed: int = 0
    min_dwell_s: float = 4.0
    max_dwell_s: float = 12.0
    _edges: list[tuple[float, int]] = field(default_factory=list, init=False, repr=False)
    _rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed + 1)
        self._edges = [(0.0, 0)]

    def state_at(self, t: float) -> int:
        while self._edges[-1][0] <= t:
            start, state = self._edges[-1]
            dwell = self._rng.uniform(self.min_dwell_s, self.max_dwell_s)
            nxt = (state + int(self._rng.integers(1, len(STATES)))) % len(STATES)
            self._edges.append((start + dwell, nxt))
            if len(self._edges) > 64:
                del self._edges[:-2]
        for start, state in reversed(self._edges):
            if start <= t:
                return state
        return self._edges[0][1]
