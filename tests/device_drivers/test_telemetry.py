"""Telemetry parsing: each format, detection, bad input, bounds. Expected values come from the
samples the tests themselves generate, never from the parser."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from device_drivers.errors import InputError
from device_drivers.telemetry import MAX_ABS_VALUE, TelemetryBatch, TelemetryParser

LABELS = ("normal", "imbalance", "bearing_fault")


def parser(fmt: str | None = None, **kw) -> TelemetryParser:
    return TelemetryParser(fmt, clock=lambda: 100.0, **kw)


def values(batch: TelemetryBatch, name: str) -> list[float]:
    return batch.series(name)[1].tolist()


def times(batch: TelemetryBatch, name: str) -> list[float]:
    return batch.series(name)[0].tolist()


def runtime_samples(n: int, t0_ms: int = 1000, period_ms: int = 20) -> list[dict]:
    out = []
    for i in range(n):
        p = [(i * 7 + k * 3) % 10 + 1 for k in range(3)]
        out.append(
            {
                "t": t0_ms + i * period_ms,
                "scores": {label: x / sum(p) for label, x in zip(LABELS, p, strict=True)},
                "latency_us": 1000 + i,
                "arena_used": 20480,
                "heap_free": 50000 - i,
                "temp_c": 36.5 + i / 10,
                "vcc_mv": 3300,
                "cpu_load": (i % 10) / 10,
            }
        )
    return out


def encode(samples: list[dict]) -> bytes:
    return b"".join(json.dumps(s).encode() + b"\n" for s in samples)


# ---- JSON lines ------------------------------------------------------------------------------


def test_json_runtime_lines_become_channels_on_the_device_clock() -> None:
    samples = runtime_samples(50)
    p = parser()
    p.feed(encode(samples))
    batch = p.drain()
    assert batch.format == "json"
    assert (batch.parsed, batch.dropped) == (50, 0)
    expected_t = [s["t"] / 1000 for s in samples]
    for key in ("latency_us", "arena_used", "heap_free", "temp_c", "vcc_mv", "cpu_load"):
        assert values(batch, key) == [float(s[key]) for s in samples], key
        assert times(batch, key) == expected_t
    for label in LABELS:
        assert values(batch, f"score/{label}") == [s["scores"][label] for s in samples]
    last = samples[-1]["scores"]
    assert batch.top_label == max(last, key=last.get)
    for t, v in batch.channels.values():
        assert t.dtype == np.float64 and v.dtype == np.float64


def test_json_unknown_numeric_keys_and_nested_objects_flatten() -> None:
    p = parser("json")
    line = {
        "t": 5,
        "foo": 3,
        "imu": {"ax": 1.5, "g": {"z": -2}, "name": "bmi270"},
        "label": "normal",
        "ok": True,
        "raw": [1, 2, 3],
        "none": None,
    }
    p.feed(b"\n" + json.dumps(line).encode() + b"\n")
    batch = p.drain()
    assert set(batch.channels) == {"foo", "imu/ax", "imu/g/z"}
    assert values(batch, "imu/g/z") == [-2.0]
    assert (batch.parsed, batch.dropped) == (1, 0)


def test_json_without_t_uses_the_host_time_given_to_feed() -> None:
    p = parser()
    p.feed(b'{"a": 1}\n', t=12.5)
    p.feed(b'{"a": 2}\n')  # no t: the parser's clock (100.0 here)
    batch = p.drain()
    assert times(batch, "a") == [12.5, 100.0]


def test_json_bad_values_are_dropped_one_by_one_and_counted() -> None:
    p = parser()
    lines = [
        '{"a": NaN, "b": 1}',
        '{"a": Infinity, "b": 2}',
        '{"a": 1e999, "b": 3}',
        f'{{"a": {10**30}, "b": 4}}',
        f'{{"a": {MAX_ABS_VALUE * 10!r}, "b": 5}}',
        '{"a": 7, "b": 6, "scores": {"x": NaN, "y": 0.5}}',
    ]
    p.feed(("\n".join(lines) + "\n").encode())
    batch = p.drain()
    assert values(batch, "b") == [1, 2, 3, 4, 5, 6]
    assert values(batch, "a") == [7]
    assert values(batch, "score/y") == [0.5]
    assert "score/x" not in batch.channels
    assert batch.top_label == "y"
    assert (batch.parsed, batch.dropped) == (6, 6)


def test_json_malformed_lines_are_dropped_and_log_lines_kept_for_the_console() -> None:
    p = parser()
    good = encode(runtime_samples(3))
    noise = b'{"t": 1, "a": \n[1, 2]\n{"unterminated\nI: booting\n{"a": 1}}\n' + b"[" * 3000 + b"\n"
    p.feed(good + noise + good)
    batch = p.drain()
    assert batch.parsed == 6
    assert batch.dropped == 3  # truncated object, extra brace, unterminated string
    assert "I: booting" in batch.lines
    assert len(batch.lines) == 6 + 6


def test_device_reset_keeps_time_monotonic_and_spacing_intact() -> None:
    t_ms = [1000, 2000, 3000, 500, 1500, 2500]
    p = parser()
    p.feed(b"".join(b'{"t": %d, "a": %d}\n' % (t, i) for i, t in enumerate(t_ms)))
    ts = times(p.drain(), "a")
    assert ts[:3] == [1.0, 2.0, 3.0]
    assert np.all(np.diff(ts) > 0)
    assert np.allclose(np.diff(ts[3:]), [1.0, 1.0])
    assert p.device_resets == 1


def test_u32_millisecond_wrap_continues_the_timeline() -> None:
    t_ms = [2**32 - 30, 2**32 - 20, 2**32 - 10, 0, 10, 20]
    p = parser()
    p.feed(b"".join(b'{"t": %d, "a": 1}\n' % t for t in t_ms))
    ts = times(p.drain(), "a")
    assert np.allclose(np.diff(ts), 0.01)


def test_json_bad_t_falls_back_to_host_time() -> None:
    p = parser()
    p.feed(b'{"t": "soon", "a": 1}\n{"t": -5, "a": 2}\n', t=7.0)
    batch = p.drain()
    assert times(batch, "a") == [7.0, 7.0]
    assert batch.dropped == 2


# ---- Arduino plotter -------------------------------------------------------------------------


@pytest.mark.parametrize("sep", [",", " ", "\t", ", "])
def test_arduino_unlabeled_values_by_position(sep: str) -> None:
    rows = [[i * 0.5, -i, i * 1000] for i in range(40)]
    text = "5,3.25\r\n" + "".join(sep.join(repr(v) for v in r) + "\r\n" for r in rows)
    p = parser()
    p.feed(text.encode())
    batch = p.drain()
    assert batch.format == "arduino"
    for j in range(3):
        assert values(batch, f"ch{j}") == [r[j] for r in rows]
    assert (batch.parsed, batch.dropped) == (40, 1)  # the partial first line
    assert set(times(batch, "ch0")) == {100.0}


def test_arduino_labeled_values_both_spellings() -> None:
    p = parser("arduino")
    p.feed(b"\ntemp:21.5,hum:40\ntemp: 22 hum: 41\ntemp:23\thum:42\n")
    batch = p.drain()
    assert values(batch, "temp") == [21.5, 22, 23]
    assert values(batch, "hum") == [40, 41, 42]
    assert batch.parsed == 3


def test_arduino_first_partial_line_is_dropped_even_when_split() -> None:
    p = parser()
    for piece in (b"23,4", b"5\n1,2\n3,", b"4\n5,6\n7,8\n"):
        p.feed(piece)
    batch = p.drain()
    assert values(batch, "ch0") == [1, 3, 5, 7]
    assert batch.dropped == 1


def test_arduino_nan_inf_ovf_and_huge_values_are_dropped_per_value() -> None:
    p = parser("arduino")
    p.feed(b"\n1,nan,3\n4,inf,6\n7,ovf,9\n10,1e300,12\n13,-inf,15\n")
    batch = p.drain()
    assert values(batch, "ch0") == [1, 4, 7, 10, 13]
    assert values(batch, "ch2") == [3, 6, 9, 12, 15]
    assert "ch1" not in batch.channels
    assert (batch.parsed, batch.dropped) == (5, 5)


def test_arduino_corrupted_lines_are_dropped_log_lines_are_not() -> None:
    p = parser("arduino")
    p.feed(b"\n1,2\nSensor ready\n3,x7\n5,6\n\n")
    batch = p.drain()
    assert values(batch, "ch0") == [1, 5]
    assert values(batch, "ch1") == [2, 6]
    assert batch.dropped == 1  # "3,x7" starts like data
    assert "Sensor ready" in batch.lines


def test_arduino_rows_of_different_widths_keep_their_positions() -> None:
    p = parser("arduino")
    p.feed(b"\n1,2\n3,4,5\n6\n7,8,9\n")
    batch = p.drain()
    assert values(batch, "ch0") == [1, 3, 6, 7]
    assert values(batch, "ch1") == [2, 4, 8]
    assert values(batch, "ch2") == [5, 9]


# ---- Edge Impulse ----------------------------------------------------------------------------

EI_CLASSIC = (
    "Edge Impulse standalone inferencing (Arduino)\r\n"
    "run_classifier returned: 0\r\n"
    "Predictions (DSP: 6 ms., Classification: 1 ms., Anomaly: 2 ms.): \r\n"
    "[0.00000, 0.99609, 0.00391]\r\n"
    "    idle: \t0.00000\r\n"
    "    snake: \t0.99609\r\n"
    "    updown: \t0.00391\r\n"
    "    anomaly score: 0.167\r\n"
    "run_classifier returned: 0\r\n"
    "Predictions (DSP: 7 ms., Classification: 0 ms., Anomaly: 3 ms.): \r\n"
    "#Classification results:\r\n"
    "    idle: 0.75\r\n"
    "    snake: 0.2\r\n"
    "    updown: 0.05\r\n"
    "    anomaly score: -0.5\r\n"
    "Predictions (DSP: 8 ms., Classification: 1 ms., Anomaly: 0 ms.):\r\n"
    "    idle: 0.1\r\n"
    "    snake: 0.3\r\n"
    "    updown: 0.6\r\n"
)


def test_edge_impulse_blocks() -> None:
    p = parser()
    p.feed(EI_CLASSIC.encode(), t=3.0)
    batch = p.drain()
    assert batch.format == "ei"
    # the third block is still open: it ends at the next non-indented line or header
    assert batch.parsed == 2
    assert values(batch, "dsp_ms") == [6, 7]
    assert values(batch, "classification_ms") == [1, 0]
    assert values(batch, "anomaly_ms") == [2, 3]
    assert values(batch, "score/idle") == [0.0, 0.75]
    assert values(batch, "score/snake") == [0.99609, 0.2]
    assert values(batch, "anomaly_score") == [0.167, -0.5]
    assert batch.top_label == "idle"
    assert "score/anomaly score" not in batch.channels
    p.feed(b"Starting inferencing in 2 seconds...\r\n", t=4.0)
    batch = p.drain()
    assert batch.parsed == 1
    assert values(batch, "score/updown") == [0.6]
    assert times(batch, "score/updown") == [3.0]  # the header's time
    assert batch.top_label == "updown"


def test_edge_impulse_newer_timing_style_and_malformed_score_lines() -> None:
    p = parser("ei")
    p.feed(
        b"Timing: DSP 3 ms, inference 2 ms, anomaly 1 ms\r\n"
        b"Predictions:\r\n"
        b"  idle: 0.10000\r\n"
        b"  wave: abc\r\n"
        b"  wave: 0.90000\r\n"
        b"Anomaly prediction: -0.250\r\n"
        b"Predictions (DSP: 1 ms., Classification: 1 ms.):\r\n"
        b"    wave: 1\r\n"
        b"Predictions (DSP: 2 ms., Classification: 2 ms.):\r\n"
    )
    batch = p.drain()
    assert values(batch, "dsp_ms") == [3, 1]
    assert values(batch, "score/wave") == [0.9, 1.0]
    assert values(batch, "anomaly_score") == [-0.25]
    assert values(batch, "anomaly_ms") == [1]
    assert batch.dropped == 1


def test_edge_impulse_indented_lines_before_a_header_are_ignored() -> None:
    p = parser()
    p.feed(b"  idle: 0.9\n    wave: 0.1\n    idle: 0.5\n    wave: 0.5\n" + EI_CLASSIC.encode())
    batch = p.drain()
    assert batch.format == "ei"
    assert values(batch, "score/idle") == [0.0, 0.75]


# ---- detection -------------------------------------------------------------------------------


def test_log_lines_first_then_json() -> None:
    logs = b"*** Booting Zephyr OS ***\n[00:00:00.001] <inf> tinyops: runtime 0.1\nI: ready\n"
    p = parser()
    p.feed(logs)
    assert p.format is None
    p.feed(encode(runtime_samples(2)))
    batch = p.drain()
    assert batch.format == "json"
    assert batch.parsed == 2
    assert batch.lines[:3] == logs.decode().splitlines()


def test_log_lines_first_then_plotter_values_keep_every_sample() -> None:
    p = parser()
    p.feed(b"ets Jun  8 2016 00:22:57\nrst:0x1 (POWERON_RESET)\nready\n1,2\n3,4\n")
    assert p.format is None  # two plotter lines are not enough evidence
    p.feed(b"5,6\n7,8\n")
    batch = p.drain()
    assert batch.format == "arduino"
    assert values(batch, "ch0") == [1, 3, 5, 7]
    assert batch.dropped == 0


def test_a_stream_of_only_log_text_is_never_data() -> None:
    text = "".join(f"[{i}] <inf> app: tick number {i} done\n" for i in range(50))
    p = parser()
    p.feed(text.encode())
    batch = p.drain()
    assert batch.format is None
    assert (batch.parsed, batch.dropped, batch.channels) == (0, 0, {})
    assert len(batch.lines) == 50


def test_forced_format_never_switches() -> None:
    p = parser("arduino")
    p.feed(b"\n" + encode(runtime_samples(5)))
    batch = p.drain()
    assert (batch.format, batch.parsed, batch.channels) == ("arduino", 0, {})
    p = parser("json")
    p.feed(b"\n" + b"1,2\n" * 20)
    batch = p.drain()
    assert (batch.format, batch.parsed, batch.channels) == ("json", 0, {})


def test_auto_mode_follows_a_reflash_to_another_format() -> None:
    p = parser()
    p.feed(b"\n1,2\n3,4\n5,6\n")
    assert p.format == "arduino"
    p.feed(encode(runtime_samples(2)))
    assert p.format == "json"
    p.feed(b"".join(b"%d %d\n" % (i, i) for i in range(7)))
    assert p.format == "json"  # seven plotter lines are not enough to leave a known format
    p.feed(b"7 7\n8 8\n")
    assert p.format == "arduino"
    batch = p.drain()
    assert values(batch, "ch0") == [1, 3, 5, *range(9)]


def test_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError, match="unknown telemetry format"):
        TelemetryParser("csv")
    assert TelemetryParser("auto").format is None


# ---- framing, bad bytes, bounds ----------------------------------------------------------------


@pytest.mark.parametrize("chunk", [1, 7, 100, 10_000])
def test_over_long_lines_are_dropped_once_whatever_the_chunking(chunk: int) -> None:
    stream = b'\n{"a": 1}\n' + b"x" * 300 + b'\r\n{"a": 2}\n' + b"y" * 65 + b'\n{"a": 3}\n'
    p = parser(max_line=64)
    for i in range(0, len(stream), chunk):
        p.feed(stream[i : i + chunk])
        assert p.buffered()["pending_bytes"] <= 65
    batch = p.drain()
    assert values(batch, "a") == [1, 2, 3]
    assert batch.dropped == 2
    assert not any(line.startswith(("x", "y")) for line in batch.lines)


def test_line_of_exactly_max_line_bytes_is_kept_with_or_without_cr() -> None:
    body = b'{"a": 1, "pad": "' + b"p" * 40 + b'"}'
    p = parser(max_line=len(body))
    p.feed(b"\n" + body + b"\r")
    p.feed(b"\n" + body + b"\n")
    assert values(p.drain(), "a") == [1, 1]


def test_invalid_utf8_is_dropped_but_visible_in_the_console() -> None:
    p = parser()
    p.feed(b'\n{"a": 1}\n\xff\xfe{"a": 2}\n{"a": 3, "s": "\xc3\xa9t\xc3\xa9"}\n')
    batch = p.drain()
    assert values(batch, "a") == [1, 3]
    assert batch.dropped == 1
    assert any("\ufffd" in line for line in batch.lines)


def test_binary_noise_never_raises() -> None:
    rng = np.random.default_rng(1)
    p = parser()
    for _ in range(200):
        p.feed(rng.integers(0, 256, size=int(rng.integers(0, 300)), dtype=np.uint8).tobytes())
    p.feed(bytearray(b'\n{"a": 1}\n'))
    p.feed(memoryview(b'{"a": 2}\n'))
    p.feed('{"a": 3}\n')  # type: ignore[arg-type]  # a str by mistake: still no exception
    batch = p.drain()
    assert values(batch, "a")[-3:] == [1, 2, 3]
    assert p.internal_errors == 0


def test_points_are_capped_oldest_first_and_counted() -> None:
    p = parser(max_points=1000)
    n = 5000
    p.feed(b"\n" + b"".join(b'{"a": %d, "b": %d}\n' % (i, -i) for i in range(n)))
    assert p.buffered()["points"] <= 1000
    batch = p.drain()
    kept = values(batch, "a")
    assert kept == list(range(n - len(kept), n))  # the newest, contiguous
    assert batch.dropped == 2 * n - len(batch)
    assert batch.parsed == n


def test_console_lines_are_capped_and_counted() -> None:
    p = parser(max_lines=10)
    p.feed(b"".join(b"log %d\n" % i for i in range(25)))
    batch = p.drain()
    assert batch.lines == [f"log {i}" for i in range(15, 25)]
    assert batch.lines_dropped == 15


def test_channels_are_capped_and_extra_ones_counted() -> None:
    p = parser("arduino", max_channels=4)
    p.feed(b"\n" + b"".join(b"k%d:%d\n" % (i, i) for i in range(10)))
    batch = p.drain()
    assert set(batch.channels) == {"k0", "k1", "k2", "k3"}
    assert batch.dropped == 6


def test_drain_resets_counters_and_keeps_the_top_label() -> None:
    p = parser()
    p.feed(b'\n{"scores": {"a": 0.2, "b": 0.8}}\n{"x": NaN}\n')
    first = p.drain()
    assert (first.parsed, first.dropped, first.top_label) == (2, 1, "b")
    p.feed(b'{"x": 1}\n')
    second = p.drain()
    assert (second.parsed, second.dropped, second.top_label) == (1, 0, "b")
    assert set(second.channels) == {"x"}
    empty = p.drain()
    assert (empty.channels, empty.lines, empty.parsed) == ({}, [], 0)


def test_batch_merge_rows_and_series() -> None:
    p = parser()
    p.feed(b'\n{"t": 1000, "a": 1}\n', t=0.0)
    b1 = p.drain()
    p.feed(b'{"t": 2000, "a": 2, "b": 5}\n', t=0.0)
    b2 = p.drain()
    merged = TelemetryBatch.merge([b1, b2])
    assert values(merged, "a") == [1, 2]
    assert merged.parsed == 2 and len(merged) == 3
    assert merged.rows() == [(1.0, "a", 1.0), (2.0, "a", 2.0), (2.0, "b", 5.0)]
    t, v = merged.series("missing")
    assert len(t) == len(v) == 0


def test_all_values_out_are_finite_and_bounded() -> None:
    p = parser()
    p.feed(b'\n{"a": 1e308, "b": -1e16, "c": 1e15, "d": -0.0}\n')
    batch = p.drain()
    assert values(batch, "c") == [1e15]
    assert math.copysign(1, values(batch, "d")[0]) == -1
    assert set(batch.channels) == {"c", "d"}


def test_integers_beyond_float_range_next_to_floats_are_dropped() -> None:
    p = parser("json")
    lines = [b'{"a": %s, "b": 1}' % (b"1.5" if i % 2 else b"1" + b"0" * 400) for i in range(20)]
    p.feed(b"\n" + b"\n".join(lines) + b"\n")
    batch = p.drain()
    assert values(batch, "a") == [1.5] * 10
    assert values(batch, "b") == [1.0] * 20
    assert (batch.parsed, batch.dropped, p.internal_errors) == (20, 10, 0)


def test_one_huge_feed_still_respects_the_caps() -> None:
    p = parser("arduino", max_points=5000)
    p.feed(b"\n" + b"1,2,3\n" * 400_000)  # 2.4 MB in one call
    assert p.buffered()["points"] <= 5000
    batch = p.drain()
    assert batch.parsed == 400_000
    assert len(batch) + batch.dropped == 3 * 400_000
