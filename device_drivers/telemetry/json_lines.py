"""JSON lines, the TinyOps runtime's telemetry: one object per line.

``{"t": ms, "scores": {label: p}, "latency_us": n, "arena_used": n, ...}``: ``t`` is the device
clock in milliseconds, ``scores`` become ``score/<label>``, every other numeric key a channel of
its own name, nested objects ``key/sub`` (up to four levels). Strings, booleans, nulls and
arrays are ignored; numbers that are not finite or exceed ``MAX_ABS_VALUE`` are dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from device_drivers.telemetry.json_columns import decode_run
from device_drivers.telemetry.store import MAX_ABS_VALUE, Channel, Collector, DeviceClock

_MAX_DEPTH = 4
_MIN_RUN = 8  # shorter runs of objects are faster line by line
_MAX_T_MS = float(2**53)


def json_object(line: str) -> dict | None:
    """The object on ``line`` if it is one complete JSON object, else None."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return obj if type(obj) is dict else None


class JsonDecoder:
    """Decodes JSON object lines; lines not starting with ``{`` go to ``foreign``."""

    name = "json"

    def __init__(
        self,
        sink: Collector,
        clock: DeviceClock,
        foreign: Callable[[str, float], bool],
        candidates: list,
    ) -> None:
        self.sink = sink
        self.clock = clock
        self.foreign = foreign
        self.candidates = candidates
        self._scores: dict[str, Channel | None] = {}
        self.columns = True  # column-wise shortcut; tests switch it off to check equivalence

    def run(self, lines: list[str], start: int, t: float) -> int:
        """Decode ``lines[start:]``; return where to resume if the format was switched."""
        i, n = start, len(lines)
        while i < n:
            line = lines[i]
            if line.startswith("{"):
                j = i + 1
                while j < n and lines[j].startswith("{"):
                    j += 1
                if j - i >= _MIN_RUN and self.columns and decode_run(self, lines[i:j], t):
                    self.candidates.clear()
                else:
                    for k in range(i, j):
                        self._line(lines[k], t)
                i = j
                continue
            stripped = line.strip()
            if stripped.startswith("{"):
                self._line(stripped, t)
            elif self.foreign(line, t):
                return i + 1
            i += 1
        return n

    def _line(self, line: str, t: float) -> None:
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            self.sink.dropped += 1
            return
        if type(obj) is dict:
            self.sample(obj, t)
            self.candidates.clear()
        else:
            self.sink.dropped += 1

    def sample(self, obj: dict, t: float) -> None:
        """Add one decoded object (a sample) at host time ``t`` unless it carries ``"t"``."""
        sink = self.sink
        hi = MAX_ABS_VALUE
        lo = -hi
        tv = obj.get("t")
        if tv is not None:
            if (type(tv) is int or type(tv) is float) and 0 <= tv <= _MAX_T_MS:
                t = self.clock.seconds(tv)
            else:
                sink.dropped += 1
        channels = sink.channels
        for key, v in obj.items():
            kind = type(v)
            if kind is float or kind is int:
                if key == "t":
                    continue
                if lo <= v <= hi:
                    ch = channels.get(key) or sink.channel(key)
                    if ch is not None:
                        ch.add_t(t)
                        ch.add_v(v)
                        continue
                sink.dropped += 1
            elif kind is dict:
                if key == "scores":
                    self._add_scores(v, t)
                else:
                    self._add_nested(key + "/", v, t, 1)
        sink.parsed += 1

    def _add_scores(self, scores: dict, t: float) -> None:
        sink = self.sink
        cache = self._scores
        best = None
        best_p = 0.0
        for label, p in scores.items():
            if (type(p) is float or type(p) is int) and -MAX_ABS_VALUE <= p <= MAX_ABS_VALUE:
                ch = cache.get(label)
                if ch is None:
                    ch = sink.channel("score/" + label)
                    if ch is None:
                        sink.dropped += 1
                        continue
                    cache[label] = ch
                ch.add_t(t)
                ch.add_v(p)
                if best is None or p > best_p:
                    best, best_p = label, p
            else:
                sink.dropped += 1
        if best is not None:
            sink.top_label = best

    def _add_nested(self, prefix: str, obj: dict, t: float, depth: int) -> None:
        sink = self.sink
        for key, v in obj.items():
            kind = type(v)
            if kind is float or kind is int:
                if -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:
                    sink.add(prefix + key, t, v)
                else:
                    sink.dropped += 1
            elif kind is dict and depth < _MAX_DEPTH:
                self._add_nested(prefix + key + "/", v, t, depth + 1)
