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
from typing import TYPE_CHECKING

from device_drivers.telemetry.store import MAX_ABS_VALUE, MAX_NAME, Channel

if TYPE_CHECKING:
    from device_drivers.telemetry.json_lines import JsonDecoder

_NUMBERS = frozenset({int, float})
_IGNORED = frozenset({str, bool, type(None)})  # no lists: see the module docstring
_MAX_T_MS = float(2**53)


def _numeric(col: list, lo: float, hi: float) -> bool:
    """Every item an int/float (not bool) within [lo, hi]: NaN and inf fail the sum test."""
    if not set(map(type, col)) <= _NUMBERS:
        return False
    total = sum(col)
    return total - total == 0 and min(col) >= lo and max(col) <= hi


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
    plan: list[tuple[str, list]] = []  # (channel name, values) in first-line key order
    t_col = None
    best_scores = None
    for key in objs[0]:
        col = [o[key] for o in objs]
        if key == "t":
            if not _numeric(col, 0, _MAX_T_MS):
                return False
            t_col = col
            continue
        kinds = set(map(type, col))
        if kinds <= _NUMBERS:
            if not _numeric(col, -MAX_ABS_VALUE, MAX_ABS_VALUE):
                return False
            plan.append((key, col))
        elif kinds == {dict} and key == "scores":
            if len(set(map(tuple, col))) != 1:
                return False
            for label in col[0]:
                scores = [s[label] for s in col]
                if not _numeric(scores, -MAX_ABS_VALUE, MAX_ABS_VALUE):
                    return False
                plan.append(("score/" + label, scores))
            best_scores = col[-1]
        elif not kinds <= _IGNORED:
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
