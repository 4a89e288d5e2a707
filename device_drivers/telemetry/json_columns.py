"""Column-wise shortcut for runs of JSON lines that all carry the same keys (the runtime's case).

One ``json.loads`` parses the whole run as an array, then each key becomes a column that is
checked and appended with C-level operations. Lines are joined with ``",\n"``: a JSON string
cannot hold a raw newline and, with arrays refused, an object cannot continue on the next line
(after a comma inside an object a key must follow, not ``{``). So when the array holds exactly
one object per line, each line was exactly that object, as ``json.loads(line)`` would find.

Whenever the line-by-line path could decide anything differently (a line that is not one
object, keys that vary, a value that is not a plain finite number, a nested object other than
uniform ``scores``, too many channels), nothing is changed and False is returned: that
equivalence is what makes the shortcut safe.
"""

from __future__ import annotations

import json
from itertools import chain
from operator import itemgetter
from typing import Protocol

from device_drivers.telemetry.store import MAX_ABS_VALUE, MAX_NAME, Channel, Collector, DeviceClock


class JsonDecoder(Protocol):
    """What a run needs of ``json_lines.JsonDecoder`` (a protocol: no import back, no circle)."""

    sink: Collector
    clock: DeviceClock
    candidates: list

_NUMBERS = frozenset({int, float})
_IGNORED = frozenset({str, bool, type(None)})  # no lists: see the module docstring
_MAX_T_MS = float(2**53)


def _columns(dicts: list[dict], keys: tuple) -> list[tuple]:
    """The values of ``keys`` as one tuple per key (C-level transposition)."""
    if len(keys) == 1:
        return [tuple(map(itemgetter(keys[0]), dicts))]
    return list(zip(*map(itemgetter(*keys), dicts), strict=True))


def _in_range(values: list | tuple, lo: float, hi: float) -> bool:
    """All within [lo, hi] (numbers only); NaN and inf fail the sum test."""
    try:
        total = sum(values)
    except OverflowError:  # an int too large for a float next to floats
        return False
    return total - total == 0 and min(values) >= lo and max(values) <= hi


def decode_run(decoder: JsonDecoder, lines: list[str], t_host: float) -> bool:
    """Decode ``lines`` (each starting with ``{``) as columns; False if it cannot be exact."""
    try:
        objs = json.loads("[" + ",\n".join(lines) + "]")
    except (ValueError, RecursionError):
        return False
    n = len(objs)
    if n != len(lines) or set(map(type, objs)) != {dict} or len(set(map(tuple, objs))) != 1:
        return False
    sink = decoder.sink
    plan: list[tuple[str, tuple]] = []  # (channel name, values) in first-line key order
    t_col = None
    best_scores = None
    keys = tuple(objs[0])
    if not keys:
        sink.parsed += n
        decoder.candidates.clear()
        return True
    for key, col in zip(keys, _columns(objs, keys), strict=True):
        kinds = set(map(type, col))
        if key == "t":
            if not kinds <= _NUMBERS or not _in_range(col, 0, _MAX_T_MS):
                return False
            t_col = col
        elif kinds <= _NUMBERS:
            plan.append((key, col))
        elif kinds == {dict} and key == "scores":
            if len(set(map(tuple, col))) != 1:
                return False
            labels = tuple(col[0])
            for label, scores in zip(labels, _columns(col, labels) if labels else (), strict=True):
                if not set(map(type, scores)) <= _NUMBERS:
                    return False
                plan.append(("score/" + label, scores))
            best_scores = col[-1]
        elif not kinds <= _IGNORED:
            return False
    if plan and not _in_range(
        list(chain.from_iterable(values for _, values in plan)), -MAX_ABS_VALUE, MAX_ABS_VALUE
    ):
        return False
    names = {name for name, _ in plan}
    if len(names) != len(plan):  # e.g. a key "score/a" next to scores {"a": ...}
        return False
    channels = sink.channels
    new = [name for name in names if name not in channels]
    if len(channels) + len(new) > sink.max_channels or any(not 0 < len(k) <= MAX_NAME for k in new):
        return False
    # validated: from here on, the same mutations as line by line, in the same order
    if t_col is None:
        times = [t_host] * n
    else:
        seconds = decoder.clock.seconds
        times = [seconds(x) for x in t_col]
    for name, values in plan:
        ch: Channel = channels.get(name) or sink.channel(name)  # type: ignore[assignment]
        ch.ts.extend(times)
        ch.vs.extend(values)
    if best_scores:
        sink.top_label = max(best_scores, key=best_scores.__getitem__)
    sink.parsed += n
    return True
