"""The parser survives its own bugs, and counts and reports every kind of them."""

from __future__ import annotations

import logging

import pytest

from device_drivers.telemetry.parser import TelemetryParser


class DecoderBug(Exception):
    """Stands for a bug in one of the decoders."""


def _failing(errors: list[BaseException]):
    def feed(data: bytes, t: float) -> None:
        raise errors.pop(0)

    return feed


def test_every_internal_error_class_is_counted_and_logged_once(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    p = TelemetryParser("json")
    bugs: list[BaseException] = [ValueError("a"), KeyError("b"), ValueError("c"),
                                 DecoderBug("d"), KeyError("e"), ValueError("f")]
    monkeypatch.setattr(p, "_feed", _failing(bugs))
    with caplog.at_level(logging.ERROR, logger="device_drivers.telemetry.parser"):
        for _ in range(6):
            p.feed(b'{"t": 1, "x": 1}\n', 0.0)  # never raises
    bug_name = f"{__name__}.DecoderBug"
    assert p.internal_error_counts == {"ValueError": 3, "KeyError": 2, bug_name: 1}
    assert p.internal_errors == 6
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.args[0] for r in logged] == ["ValueError", "KeyError", bug_name]
    assert all(r.exc_info for r in logged)  # each first occurrence with its traceback
    assert p.drain().dropped == 6


def test_drain_errors_are_counted_too(monkeypatch: pytest.MonkeyPatch) -> None:
    p = TelemetryParser("json")
    p.feed(b'{"t": 1, "x": 1}\n{"t": 2, "x": 2}\n', 0.0)

    def broken(fmt: object) -> object:
        raise RuntimeError("drain bug")

    monkeypatch.setattr(p._sink, "drain", broken)
    batch = p.drain()
    assert batch.format == "json" and p.internal_error_counts == {"RuntimeError": 1}
    monkeypatch.undo()
    assert p.internal_errors == 1


def test_a_healthy_stream_has_no_internal_errors() -> None:
    p = TelemetryParser()
    p.feed(b'boot\n{"t": 1, "x": 1.5}\n{"t": 2, "x": 2.5}\n', 0.0)
    assert p.drain().parsed == 2
    assert p.internal_errors == 0 and p.internal_error_counts == {}
