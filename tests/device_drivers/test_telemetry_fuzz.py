"""Property tests of the telemetry parser: chunking never changes the result, arbitrary bytes never
raise, memory stays bounded, decoded values match what was sent.

Example counts are modest by default; ``TINYOPS_FUZZ_EXAMPLES=100000`` runs the robustness suite.
"""

from __future__ import annotations

import itertools
import json
import math
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_drivers.telemetry import MAX_ABS_VALUE, TelemetryBatch, TelemetryParser
from device_drivers.telemetry.arduino import ArduinoDecoder
from device_drivers.telemetry.json_lines import JsonDecoder
from device_drivers.telemetry.store import Collector, DeviceClock

_EXAMPLES = int(os.environ.get("TINYOPS_FUZZ_EXAMPLES", "0"))


def fuzz(default: int):
    return settings(
        max_examples=_EXAMPLES or default,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# ---- stream strategies -------------------------------------------------------------------------

labels = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=8)
finite = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
number = st.one_of(finite, st.integers(-(10**9), 10**9))
odd_number = st.sampled_from([math.nan, math.inf, -math.inf, 1e300, 10**20, -0.0])
huge_int = st.just(10**400)  # no float holds it: JSON only (f-strings cannot format it)


@st.composite
def json_lines(draw) -> str:
    obj: dict = {}
    if draw(st.booleans()):
        obj["t"] = draw(st.integers(0, 2**33))
    if draw(st.booleans()):
        obj["scores"] = draw(st.dictionaries(labels, st.floats(0, 1), max_size=4))
    for key in draw(st.lists(labels, max_size=4)):
        obj[key] = draw(st.one_of(number, odd_number, huge_int, st.text(max_size=4), st.booleans()))
    if draw(st.booleans()):
        obj["nest"] = {"a": draw(number), "b": {"c": draw(number)}}
    return json.dumps(obj)


@st.composite
def plotter_lines(draw) -> str:
    values = draw(st.lists(st.one_of(number, odd_number), min_size=1, max_size=5))
    fields = []
    for v in values:
        text = draw(st.sampled_from([repr, str, lambda x: f"{x:.3f}"]))(v)
        if draw(st.booleans()):
            text = draw(labels) + draw(st.sampled_from([":", ": "])) + text
        fields.append(text)
    return draw(st.sampled_from([",", " ", "\t", ", "])).join(fields)


@st.composite
def ei_blocks(draw) -> str:
    dsp, cls, anom = (draw(st.integers(0, 999)) for _ in range(3))
    lines = [f"Predictions (DSP: {dsp} ms., Classification: {cls} ms., Anomaly: {anom} ms.): "]
    for label in draw(st.lists(labels, max_size=4, unique=True)):
        lines.append(f"    {label}: {draw(st.floats(0, 1)):.5f}")
    if draw(st.booleans()):
        lines.append(f"    anomaly score: {draw(finite):.3f}")
    return "\n".join(lines)


log_lines = st.text(st.characters(blacklist_characters="\n\r"), max_size=60)
noise = st.binary(max_size=40)


@st.composite
def streams(draw) -> bytes:
    kinds = st.one_of(
        json_lines().map(str.encode),
        plotter_lines().map(str.encode),
        ei_blocks().map(str.encode),
        log_lines.map(lambda s: s.encode("utf-8", "surrogatepass")),
        noise,
    )
    parts = draw(st.lists(kinds, max_size=25))
    ending = draw(st.sampled_from([b"\n", b"\r\n"]))
    return b"".join(part + ending for part in parts)


# ---- helpers -------------------------------------------------------------------------------------


def assert_same(a: TelemetryBatch, b: TelemetryBatch) -> None:
    assert set(a.channels) == set(b.channels)
    for name, (t, v) in a.channels.items():
        t2, v2 = b.channels[name]
        assert t.tobytes() == t2.tobytes(), name
        assert v.tobytes() == v2.tobytes(), name
    assert (a.lines, a.parsed, a.dropped, a.top_label, a.format) == (
        b.lines,
        b.parsed,
        b.dropped,
        b.top_label,
        b.format,
    )


def assert_sane(batch: TelemetryBatch) -> None:
    for t, v in batch.channels.values():
        assert t.dtype == v.dtype == np.float64
        assert len(t) == len(v) > 0
        assert np.isfinite(t).all() and np.isfinite(v).all()
        assert (np.abs(v) <= MAX_ABS_VALUE).all()


def cut(data: bytes, points: list[int]) -> list[bytes]:
    edges = sorted({p % (len(data) + 1) for p in points} | {0, len(data)})
    return [data[i:j] for i, j in itertools.pairwise(edges)]


# ---- properties ----------------------------------------------------------------------------------


@fuzz(100)
@given(
    data=streams(),
    points=st.lists(st.integers(0, 10**6), max_size=30),
    drain_after=st.lists(st.booleans(), max_size=31),
    fmt=st.sampled_from([None, None, "json", "arduino", "ei"]),
)
def test_any_chunking_gives_the_same_result(data, points, drain_after, fmt) -> None:
    whole = TelemetryParser(fmt, max_line=64)
    whole.feed(data, t=1.0)
    expected = whole.drain()

    p = TelemetryParser(fmt, max_line=64)
    batches = []
    for i, piece in enumerate(cut(data, points)):
        p.feed(piece, t=1.0)
        if i < len(drain_after) and drain_after[i]:
            batches.append(p.drain())
    batches.append(p.drain())
    assert_same(TelemetryBatch.merge(batches), expected)
    assert p.internal_errors == whole.internal_errors == 0
    assert_sane(expected)


@fuzz(150)
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=30), fmt=st.sampled_from([None, "arduino"])
)
def test_arbitrary_bytes_never_raise(chunks, fmt) -> None:
    p = TelemetryParser(fmt)
    for i, chunk in enumerate(chunks):
        p.feed(chunk)
        if i % 3 == 0:
            assert_sane(p.drain())
    assert_sane(p.drain())
    assert p.internal_errors == 0


@fuzz(50)
@given(chunks=st.lists(st.one_of(streams(), st.binary(max_size=200)), max_size=20))
def test_memory_stays_bounded_without_drains(chunks) -> None:
    caps = {"max_points": 50, "max_channels": 6, "max_lines": 8}
    p = TelemetryParser(max_line=48, **caps)
    for chunk in chunks:
        p.feed(chunk, t=1.0)
        held = p.buffered()
        assert held["points"] <= caps["max_points"]
        assert held["channels"] <= caps["max_channels"]
        assert held["lines"] <= caps["max_lines"]
        assert held["pending_bytes"] <= 48 + 1
    assert_sane(p.drain())
    assert p.internal_errors == 0


@fuzz(50)
@given(
    rows=st.lists(
        st.lists(
            labels.filter(lambda k: k not in ("t", "scores")), min_size=1, max_size=4, unique=True
        ),
        min_size=1,
        max_size=60,
    ),
    cap=st.integers(16, 200),
)
def test_evicted_points_are_all_counted(rows, cap) -> None:
    p = TelemetryParser("json", max_points=cap)
    for i, keys in enumerate(rows):
        p.feed(json.dumps({k: i for k in keys}).encode() + b"\n", t=float(i))
    batch = p.drain()
    sent = sum(map(len, rows))  # a complete JSON object counts even as the very first line
    assert len(batch) + batch.dropped == sent
    for t, v in batch.channels.values():
        assert np.array_equal(t, v)  # each value is its line number, sent at t = line number
        assert np.all(np.diff(v) > 0)


@fuzz(60)
@given(
    samples=st.lists(
        st.tuples(
            st.integers(0, 2**31),
            st.dictionaries(labels, st.floats(0, 1), min_size=1, max_size=4),
            finite,
        ),
        min_size=1,
        max_size=40,
    )
)
def test_json_values_and_device_time_match_what_was_sent(samples) -> None:
    p = TelemetryParser()
    p.feed(
        b"".join(json.dumps({"t": t, "scores": s, "x": x}).encode() + b"\n" for t, s, x in samples)
    )
    batch = p.drain()
    assert batch.parsed == len(samples)
    assert batch.series("x")[1].tolist() == [float(x) for _, _, x in samples]
    ts = batch.series("x")[0]
    assert ts[0] == samples[0][0] / 1000
    assert np.all(np.diff(ts) >= 0)  # resets and wraps never run time backwards
    forward = [b - a for (a, _, _), (b, _, _) in itertools.pairwise(samples)]
    for dt, step in zip(np.diff(ts), forward, strict=True):
        if step >= 0:
            assert math.isclose(dt, step / 1000, rel_tol=1e-9, abs_tol=1e-6)
    for label in {k for _, s, _ in samples for k in s}:
        assert batch.series(f"score/{label}")[1].tolist() == [
            s[label] for _, s, _ in samples if label in s
        ]
    last = samples[-1][1]
    assert batch.top_label == max(last, key=last.get)


@fuzz(60)
@given(
    blocks=st.lists(
        st.tuples(
            st.tuples(st.integers(0, 999), st.integers(0, 999), st.integers(0, 999)),
            st.dictionaries(labels, st.floats(0, 1), min_size=1, max_size=5),
            st.none() | st.floats(-10, 10),
        ),
        min_size=1,
        max_size=15,
    ),
    logs=st.lists(st.sampled_from(["Sampling...", "run_classifier returned: 0", ""]), max_size=15),
)
def test_edge_impulse_blocks_match_what_was_printed(blocks, logs) -> None:
    text = "Edge Impulse standalone inferencing\n"
    for i, ((dsp, cls, anom), scores, anomaly) in enumerate(blocks):
        if i < len(logs):
            text += logs[i] + "\n"
        text += f"Predictions (DSP: {dsp} ms., Classification: {cls} ms., Anomaly: {anom} ms.): \n"
        text += "".join(f"    {label}: {p:.5f}\n" for label, p in scores.items())
        if anomaly is not None:
            text += f"    anomaly score: {anomaly:.3f}\n"
    text += "Starting inferencing in 2 seconds...\n"
    p = TelemetryParser()
    p.feed(text.encode())
    batch = p.drain()
    assert batch.format == "ei"
    assert batch.parsed == len(blocks)
    assert batch.series("dsp_ms")[1].tolist() == [float(b[0][0]) for b in blocks]
    assert batch.series("classification_ms")[1].tolist() == [float(b[0][1]) for b in blocks]
    for label in {k for _, s, _ in blocks for k in s}:
        expected = [float(f"{s[label]:.5f}") for _, s, _ in blocks if label in s]
        assert batch.series(f"score/{label}")[1].tolist() == expected
    anomalies = [float(f"{a:.3f}") for _, _, a in blocks if a is not None]
    assert batch.series("anomaly_score")[1].tolist() == anomalies
    last = {k: float(f"{v:.5f}") for k, v in blocks[-1][1].items()}
    assert batch.top_label == max(last, key=last.get)


tricky_tokens = st.sampled_from(
    [
        "-0",
        "0",
        "01",
        "1.",
        ".5",
        "-.5",
        "1e5",
        "1E-3",
        "1e400",
        "nan",
        "-inf",
        "ovf",
        "1_0",
        "0x10",
        "true",
        "[1]",
        "1]",
        "x",
        "",
        "99999999999999999",
        "-1.25",
        "+3",
        "٣",
    ]
)


@st.composite
def tricky_lines(draw) -> str:
    fields = []
    for _ in range(draw(st.integers(0, 4))):
        token = draw(st.one_of(tricky_tokens, number.map(repr)))
        if draw(st.integers(0, 3)) == 0:
            token = draw(st.sampled_from(["a", "b", "", "a:b"])) + ":" + token
        fields.append(token)
    line = draw(st.sampled_from([",", " ", "\t", ", ", "  "])).join(fields)
    return line + draw(st.sampled_from(["", ",", " ", "\t"]))


@fuzz(100)
@given(runs=st.lists(st.lists(tricky_lines(), min_size=1, max_size=8), min_size=1, max_size=4))
def test_arduino_column_shortcut_equals_line_by_line(runs) -> None:
    """Runs of lines that look alike take a column-wise path; it must change nothing."""
    drained = []
    for batch_mode in (True, False):
        sink = Collector(max_points=10**6, max_channels=64, max_lines=10**4)
        decoder = ArduinoDecoder(sink, lambda line, t: False)
        decoder.batch = batch_mode
        for i, lines in enumerate(runs):
            decoder.run(lines * 4, 0, float(i))
            # same-shape runs: the common case the shortcut is for (16 lines at least)
            decoder.run([lines[0]] * 20, 0, float(i))
        drained.append(sink.drain("arduino"))
    assert_same(*drained)


value_kinds = st.one_of(
    number, odd_number, huge_int, st.text(max_size=3), st.booleans(), st.none(), st.just([1, {}])
)
uniform_objects = st.fixed_dictionaries(
    {"t": st.one_of(st.integers(0, 2**40), odd_number, st.none()), "a": value_kinds},
    optional={
        "scores": st.dictionaries(st.sampled_from(["x", "y"]), value_kinds, max_size=2),
        "score/x": number,
        "n": st.fixed_dictionaries({"b": number}),
    },
).map(json.dumps)
nasty_fragments = st.sampled_from(
    [
        '{"k":[1',
        "{}]}",
        '{"k":[]},{"k":[]}',
        '{"s":"q"},{"s":"',
        '{"}',
        '{"k":1} ',
        "{",
        "{}",
        '{"k":1}}',
        '{"k":1},',
        '{"t":1,"t":2}',
        '{"":1}',
        "[1]",
        "log text",
    ]
)


@fuzz(100)
@given(
    runs=st.lists(
        st.lists(st.one_of(uniform_objects, nasty_fragments, json_lines()), min_size=1, max_size=6),
        min_size=1,
        max_size=5,
    )
)
def test_json_column_shortcut_equals_line_by_line(runs) -> None:
    """Runs of JSON lines with the same keys take a column-wise path; it must change nothing."""
    drained = []
    for columns in (True, False):
        sink = Collector(max_points=10**6, max_channels=12, max_lines=10**4)
        decoder = JsonDecoder(sink, DeviceClock(), lambda line, t: False, [])
        decoder.columns = columns
        for i, lines in enumerate(runs):
            decoder.run(lines * 3, 0, float(i))
            decoder.run([lines[0]] * 10, 0, float(i))
        drained.append(sink.drain("json"))
    assert_same(*drained)
