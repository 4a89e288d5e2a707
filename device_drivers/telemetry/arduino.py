"""Arduino Serial Plotter lines: ``1 2 3``, ``1.5,2,-3``, ``temp:21.5,hum:40`` (comma/space/tab)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import numpy as np

from device_drivers.telemetry.store import MAX_ABS_VALUE, Channel, Collector

_LABEL_GAP = re.compile(r":[ \t]+")
# Arduino prints these for float errors; they are values that cannot be used, not log text.
_BAD_NUMBERS = frozenset({"ovf", "-ovf", "+ovf"})
_NAN = float("nan")
_NOT_JSON_NUMBERS = ("[", "]", "{", '"', "t", "a", "l", "N", "I")
_loads = json.loads
# Shorter runs go line by line: each run becomes one array part per channel, and tiny parts
# would cost more memory (and drain time) than they save.
_MIN_RUN = 16
_POSITIONAL = tuple(f"ch{i}" for i in range(64))


def _positional(i: int) -> str:
    return _POSITIONAL[i] if i < 64 else f"ch{i}"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return _NAN if text.lower() in _BAD_NUMBERS else None


def plotter_values(line: str) -> list[tuple[str, float]] | None:
    """``[(channel, value), ...]`` if every field of ``line`` is a value or ``label:value``.

    Unlabeled fields are named by position (``ch0``, ``ch1``...); ``label: value`` (blank after
    the colon) is accepted too. Values may be NaN/inf (the caller rejects them). None when the
    line is not plotter data (log text, or a corrupted line); ``[]`` for a blank line.
    """
    if ":" in line:
        line = _LABEL_GAP.sub(":", line)
    out = []
    for i, field in enumerate(line.replace(",", " ").split()):
        label, sep, value = field.rpartition(":")
        v = _number(value)
        if v is None:
            return None
        out.append((label if sep and label else _positional(i), v))
    return out


def starts_like_data(line: str) -> bool:
    """True if the first field parses: the line is most likely a corrupted data line."""
    if ":" in line:
        line = _LABEL_GAP.sub(":", line)
    fields = line.replace(",", " ").split(maxsplit=1)
    return bool(fields) and _number(fields[0].rpartition(":")[2]) is not None


def _plain_columns(blob: str) -> np.ndarray | None:
    """Unlabeled numbers parsed as one JSON array of rows (C speed): a (rows, fields) array.

    JSON numbers are a subset of what ``float()`` accepts and parse to the same values; any
    character that could make the text mean something else in JSON (brackets, strings,
    ``true``/``null``/``NaN``/``Infinity``) or a ``-0`` integer (JSON gives 0) gives None.
    """
    for char in _NOT_JSON_NUMBERS:
        if char in blob:
            return None
    if " " in blob or "\t" in blob:
        blob = blob.replace(", ", ",").replace("\t", ",").replace(" ", ",")
    if ",\n" in blob or "\n," in blob or blob[:1] == "," or blob[-1:] == ",":
        blob = blob.replace(",\n", "\n").replace("\n,", "\n").strip(",")
    if "-0," in blob or "-0\n" in blob or blob.endswith("-0"):
        return None
    try:
        rows = _loads("[[" + blob.replace("\n", "],[") + "]]")
        widths = set(map(len, rows))
        if len(widths) != 1 or 0 in widths:
            return None
        table = np.array(rows, dtype=np.float64)
    except (ValueError, OverflowError, TypeError):
        return None
    if not (np.abs(table) <= MAX_ABS_VALUE).all():
        return None
    return table


def _columns(lines: list[str]) -> list[tuple[str, np.ndarray]] | None:
    """Column-wise decode of a run of lines that all carry the same fields (the common case).

    Returns ``[(channel, values), ...]``, or None whenever the line-by-line path could decide
    anything differently (labels or field counts that vary, blank lines, log text, NaN, huge
    numbers, duplicate names): that equivalence is what makes this shortcut safe.
    """
    blob = "\n".join(lines)
    if ":" in blob:
        blob = _LABEL_GAP.sub(":", blob)
    else:
        table = _plain_columns(blob)
        if table is not None:
            return [(_positional(j), table[:, j]) for j in range(table.shape[1])]
    rows = list(map(str.split, blob.replace(",", " ").split("\n")))
    widths = set(map(len, rows))
    if len(widths) != 1 or 0 in widths:
        return None
    out = []
    for j, col in enumerate(zip(*rows, strict=True)):
        label, sep, _ = col[0].partition(":")
        try:
            if sep:
                prefix = " " + label + ":"
                text = " " + " ".join(col)
                if text.count(prefix) != len(col):
                    return None
                values = list(map(float, text.replace(prefix, " ").split()))
                if len(values) != len(col):
                    return None
            else:
                values = list(map(float, col))
        except ValueError:
            return None
        total = sum(values)
        if total - total != 0 or max(values) > MAX_ABS_VALUE or min(values) < -MAX_ABS_VALUE:
            return None  # NaN or inf somewhere (or a sum that overflowed): go line by line
        out.append((label if sep and label else _positional(j), np.array(values)))
    if len({name for name, _ in out}) != len(out):
        return None
    return out


class ArduinoDecoder:
    """Decodes plotter lines into channels; lines that are not data go to ``foreign``."""

    name = "arduino"

    def __init__(self, sink: Collector, foreign: Callable[[str, float], bool]) -> None:
        self.sink = sink
        self.foreign = foreign
        self._by_pos: list[Channel | None] = []
        self.batch = True  # column-wise shortcut; tests switch it off to check equivalence

    def _grow(self, n: int) -> None:
        for i in range(len(self._by_pos), n):
            self._by_pos.append(self.sink.channel(_positional(i)))

    def run(self, lines: list[str], start: int, t: float) -> int:
        """Decode ``lines[start:]``; return where to resume if the format was switched."""
        if self.batch and len(lines) - start >= _MIN_RUN and self._run_columns(lines, start, t):
            return len(lines)
        sink = self.sink
        by_pos = self._by_pos
        hi = MAX_ABS_VALUE
        lo = -hi
        for i in range(start, len(lines)):
            line = lines[i]
            if ":" not in line:
                parts = line.replace(",", " ").split()
                if not parts:
                    continue
                try:
                    values = list(map(float, parts))
                except ValueError:
                    pass
                else:
                    if len(values) > len(by_pos):
                        self._grow(len(values))
                    for ch, v in zip(by_pos, values, strict=False):
                        if lo <= v <= hi and ch is not None:
                            ch.add_t(t)
                            ch.add_v(v)
                        else:
                            sink.dropped += 1
                    sink.parsed += 1
                    continue
            if self._slow(line, t):
                return i + 1
        return len(lines)

    def _run_columns(self, lines: list[str], start: int, t: float) -> bool:
        columns = _columns(lines[start:] if start else lines)
        if columns is None:
            return False
        sink = self.sink
        chans = [sink.channel(name) for name, _ in columns]
        if None in chans:
            return False
        rows = len(columns[0][1])
        times = np.full(rows, t, dtype=np.float64)
        for ch, (_, values) in zip(chans, columns, strict=True):
            ch.put_arrays(times, values)
        sink.parsed += rows
        return True

    def _slow(self, line: str, t: float) -> bool:
        """Labeled values, Arduino's ``ovf``, or a line that is not data. True if switched."""
        sink = self.sink
        pairs = plotter_values(line)
        if pairs is None:
            if self.foreign(line, t):
                return True
            if starts_like_data(line):
                sink.dropped += 1
            return False
        if not pairs:
            return False
        for name, v in pairs:
            if -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE:
                sink.add(name, t, v)
            else:
                sink.dropped += 1
        sink.parsed += 1
        return False
