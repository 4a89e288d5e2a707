"""Edge Impulse firmware output: a prediction header, then indented ``label: value`` lines.

Classic SDK examples::

    Predictions (DSP: 6 ms., Classification: 1 ms., Anomaly: 0 ms.):
    [0.99609, 0.00391]
        idle: 0.99609
        wave: 0.00391
        anomaly score: -0.220

Newer Arduino examples open the block with ``Timing: DSP 6 ms, inference 1 ms, anomaly 0 ms``,
then ``Predictions:``, ``  label: value`` lines and ``Anomaly prediction: -0.220``.
A block becomes one sample (at the host time of its header) when the next non-indented line
or header arrives: channels ``dsp_ms``, ``classification_ms``, ``anomaly_ms``, ``score/<label>``
and ``anomaly_score``. Inside a block, the raw ``[...]`` array, ``#...`` comments (newer SDKs)
and the ``Predictions:`` caption do not end it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from device_drivers.telemetry.store import MAX_ABS_VALUE, Collector

_NUM = r"([-+]?\d+(?:\.\d*)?)"
_CLASSIC = re.compile(
    rf"Predictions\s*\(\s*DSP:\s*{_NUM}\s*ms\.?\s*,\s*Classification:\s*{_NUM}\s*ms\.?"
    rf"(?:\s*,\s*Anomaly:\s*{_NUM}\s*ms\.?)?\s*\)"
)
_TIMING = re.compile(
    rf"Timing:\s*DSP\s*{_NUM}\s*ms\s*,\s*inference\s*{_NUM}\s*ms(?:\s*,\s*anomaly\s*{_NUM}\s*ms)?"
)
_ANOMALY = re.compile(r"Anomaly prediction:\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*$")
_CAPTIONS = ("Predictions:", "Object detection bounding boxes:")


def match_header(line: str) -> re.Match | None:
    """The header of a prediction block (either SDK style), or None."""
    first = line[:1]
    if first == "P":
        return _CLASSIC.match(line)
    if first == "T":
        return _TIMING.match(line)
    return None


_TIMINGS = ("dsp_ms", "classification_ms", "anomaly_ms")


class _Block:
    __slots__ = ("anomaly", "scores", "t", "timings")

    def __init__(self, match: re.Match, t: float) -> None:
        self.t = t
        self.timings = [None if g is None else float(g) for g in match.groups()]
        self.scores: dict[str, float] = {}
        self.anomaly: float | None = None


class EdgeImpulseDecoder:
    """Collects prediction blocks; non-indented lines that are not headers go to ``foreign``."""

    name = "ei"

    def __init__(
        self, sink: Collector, foreign: Callable[[str, float], bool], candidates: list
    ) -> None:
        self.sink = sink
        self.foreign = foreign
        self.candidates = candidates
        self.block: _Block | None = None

    def open_block(self, match: re.Match, t: float) -> None:
        self.close_block()
        self.block = _Block(match, t)
        self.candidates.clear()

    def close_block(self) -> None:
        block, self.block = self.block, None
        if block is None:
            return
        sink, t = self.sink, block.t
        for name, value in zip(_TIMINGS, block.timings, strict=True):
            if value is None:
                continue
            if value <= MAX_ABS_VALUE:
                sink.add(name, t, value)
            else:
                sink.dropped += 1
        best = None
        for label, p in block.scores.items():
            sink.add("score/" + label, t, p)
            if best is None or p > block.scores[best]:
                best = label
        if block.anomaly is not None:
            sink.add("anomaly_score", t, block.anomaly)
        if best is not None:
            sink.top_label = best
        sink.parsed += 1

    def run(self, lines: list[str], start: int, t: float) -> int:
        """Decode ``lines[start:]``; return where to resume if the format was switched."""
        for i in range(start, len(lines)):
            line = lines[i]
            first = line[:1]
            if first == " " or first == "\t":
                if self.block is not None:
                    self._score_line(line)
                continue
            if self.block is not None and self._block_text(line, first):
                continue
            match = match_header(line) if first == "P" or first == "T" else None
            if match is not None:
                self.open_block(match, t)
                continue
            self.close_block()
            if self.foreign(line, t):
                return i + 1
        return len(lines)

    def _block_text(self, line: str, first: str) -> bool:
        """Non-indented lines that belong to the open block (True: consumed)."""
        if first == "#" or first == "[" or line.startswith(_CAPTIONS):
            return True
        if first == "A":
            match = _ANOMALY.match(line)
            if match is not None:
                value = float(match.group(1))
                if -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
                    self.block.anomaly = value  # type: ignore[union-attr]
                else:
                    self.sink.dropped += 1
                return True
        return False

    def _score_line(self, line: str) -> None:
        label, sep, value = line.strip().rpartition(":")
        if not sep:
            return  # e.g. "    No objects found": text inside a block
        label = label.strip()
        try:
            v = float(value)
        except ValueError:
            v = None
        block, sink = self.block, self.sink
        if v is None or not label or not -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:
            sink.dropped += 1
        elif label == "anomaly score":
            block.anomaly = v
        elif label in block.scores or len(block.scores) < sink.max_channels:
            block.scores[label] = v
        else:
            sink.dropped += 1
