"""The runtime's summary stream mode: many inferences, one telemetry line per period.

A line carries ``"summary": {"period_ms", "n", "counts", "confidence_hist",
"latency_us_p50", "latency_us_p95"}`` (``resources/protocol/runtime_group.md``): class counts
of the top-1 label, a 10-bin histogram of the top score (bins of 0.1 from 0 to 1, the last
one closed) and the latency percentiles of the period's inferences.
"""

from __future__ import annotations

from typing import Any

HIST_BINS = 10


class SummaryAccumulator:
    """Collects one period's results; :meth:`take` returns the summary and starts anew."""

    def __init__(self, labels: list[str] | None = None) -> None:
        self.labels = list(labels or [])
        self.reset(0)

    def reset(self, now_ms: int) -> None:
        self.started_ms = now_ms
        self.counts: dict[str, int] = dict.fromkeys(self.labels, 0)
        self.hist = [0] * HIST_BINS
        self.latencies: list[int] = []

    def add(self, scores: dict[str, float] | None, latency_us: int | None) -> None:
        if scores:
            label, top = max(scores.items(), key=lambda kv: kv[1])
            self.counts[label] = self.counts.get(label, 0) + 1
            self.hist[min(HIST_BINS - 1, max(0, int(float(top) * HIST_BINS)))] += 1
        if latency_us is not None:
            self.latencies.append(int(latency_us))

    def due(self, now_ms: int, period_ms: int) -> bool:
        return now_ms - self.started_ms >= period_ms

    def take(self, now_ms: int) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> int | None:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else None

        out = {"period_ms": now_ms - self.started_ms, "n": sum(self.counts.values()),
               "counts": self.counts, "confidence_hist": self.hist,
               "latency_us_p50": pct(0.5), "latency_us_p95": pct(0.95)}
        self.reset(now_ms)
        return out
