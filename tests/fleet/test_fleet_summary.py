"""Summary stream mode (issue 12 item 5): the virtual board's summary lines, the parser's
view of them, the drift window's counting, and the fleet view on a real Mosquitto."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cbor2
import pytest
from fleet_servers import Mosquitto

from device_drivers.protocol import runtime as rt
from device_drivers.telemetry.parser import TelemetryParser
from device_drivers.telemetry.summary import summary_record
from device_drivers.virtual import publish
from device_drivers.virtual.board import VirtualBoard
from fleet_ops.fleet.drift import DriftWindow
from fleet_ops.fleet.monitor import FleetMonitor
from fleet_ops.fleet.publisher import FleetPublisher

LABELS = ["normal", "imbalance", "bearing_fault"]
EDGES = [round(0.1 * i, 1) for i in range(11)]
BASELINE = {"labels": LABELS, "class_distribution": [1 / 3] * 3, "confidence_edges": EDGES,
            "confidence_histogram": [0, 0, 0, 0, 0, 0, 0, 0, 0.1, 0.9]}


class Lines:
    """Collects a board's non-empty telemetry lines; ``wait(n)`` for the n-th summary."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.empty = 0
        self._cond = threading.Condition()

    def __call__(self, line: bytes) -> None:
        with self._cond:
            if line:
                self.lines.append(line)
            else:
                self.empty += 1
            self._cond.notify_all()

    def summaries(self) -> list[dict]:
        return [o for o in (json.loads(x) for x in list(self.lines)) if "summary" in o]

    def wait(self, n: int, timeout: float = 20.0) -> list[dict]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.summaries()) >= n, timeout), \
                (self.lines[-3:], self.empty)
        return self.summaries()


@pytest.fixture
def board(tmp_path: Path) -> Iterator[VirtualBoard]:
    with VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb", seed=4) as vb:
        yield vb


def _stream(vb: VirtualBoard, **fields: object) -> rt.StreamWriteResponse:
    reply, _ = vb.dispatcher.handle(rt.StreamWriteRequest(**fields).BYTES)
    return rt.StreamWriteResponse.loads(reply)


def test_board_streams_one_summary_per_period(board: VirtualBoard) -> None:
    lines = Lines()
    answer = _stream(board, on=True, mode="summary", summary_period_ms=1000)
    assert (answer.mode, answer.summary_period_ms, answer.period_ms) == ("summary", 1000, 100)
    board.telemetry_hooks.append(lines)
    first, second = lines.wait(2)[:2]
    assert not any("scores" in json.loads(x) for x in lines.lines)  # no per-inference lines
    for obj in (first, second):
        s = summary_record(obj)
        assert s is not None and set(s["counts"]) == set(LABELS)
        assert 7 <= s["n"] <= 12 and sum(s["counts"].values()) == s["n"]  # ~10 at 100 ms
        assert sum(s["confidence_hist"]) == s["n"] and len(s["confidence_hist"]) == 10
        assert 0 < s["latency_us_p50"] <= s["latency_us_p95"]
        assert 950 <= s["period_ms"] <= 1300 and "heap_free" in obj and "state" in obj
    assert 900 <= second["t"] - first["t"] <= 1300
    # back to raw: the answer echoes the mode, lines carry scores again
    assert _stream(board, on=True, mode="raw").mode == "raw"
    n = len(lines.lines)
    with lines._cond:
        assert lines._cond.wait_for(lambda: len(lines.lines) >= n + 3, 10)
    assert "scores" in json.loads(lines.lines[-1])
    # an old-style request gets an old-style answer, a bad period is refused
    assert _stream(board, on=True).mode is None
    reply, _ = board.dispatcher.handle(rt.StreamWriteRequest(
        on=True, mode="summary", summary_period_ms=5).BYTES)
    assert "rc" in json.dumps(cbor2.loads(reply[8:])) and board.runtime is not None
    assert board.runtime.summary_period_ms == 1000 and board.runtime.mode == "raw"


def test_parser_channels_and_summary_record() -> None:
    line = (b'{"t":1000,"summary":{"period_ms":1000,"n":10,"counts":{"normal":7,'
            b'"imbalance":3},"confidence_hist":[0,0,0,0,0,0,1,0,2,7],'
            b'"latency_us_p50":1800,"latency_us_p95":2100},"heap_free":4000}\n')
    parser = TelemetryParser()
    parser.feed(line * 3)
    batch = parser.drain()
    names = set(batch.channels) if hasattr(batch, "channels") else set()
    assert parser.format == "json"
    assert {"summary/counts/normal", "summary/latency_us_p95", "heap_free"} <= names, names
    s = summary_record(json.loads(line))
    assert s == {"counts": {"normal": 7, "imbalance": 3},
                 "confidence_hist": [0, 0, 0, 0, 0, 0, 1, 0, 2, 7], "n": 10,
                 "period_ms": 1000, "latency_us_p50": 1800, "latency_us_p95": 2100}
    assert summary_record({"scores": {"a": 1.0}}) is None
    for bad in ({"summary": [1]}, {"summary": {"counts": {"a": -1}}},
                {"summary": {"counts": {"a": 1.5}}}, {"summary": {"confidence_hist": [1, 2]}},
                {"summary": {"latency_us_p50": "fast"}}):
        with pytest.raises(ValueError):
            summary_record(bad)


def test_drift_window_counts_summaries_like_the_raw_results() -> None:
    raw, summ = DriftWindow(BASELINE, size=100), DriftWindow(BASELINE, size=100)
    # 60 results: 40 bearing faults at 0.95, 10 normal at 0.55, 10 imbalance at 0.95
    results = [("bearing_fault", 0.95)] * 40 + [("normal", 0.55)] * 10 + [("imbalance", 0.95)] * 10
    for label, top in results:
        raw.add({lab: (top if lab == label else (1 - top) / 2) for lab in LABELS})
    summ.add_summary({"bearing_fault": 40, "normal": 10, "imbalance": 10},
                     [0, 0, 0, 0, 0, 10, 0, 0, 0, 50])
    assert raw.samples == summ.samples == 60
    assert raw.score() == summ.score() and raw.score()["score"] > 0.2  # type: ignore[index]
    # whole summaries leave the window oldest first: three steady periods push the drift out
    for _ in range(3):
        summ.add_summary({"bearing_fault": 20, "normal": 20, "imbalance": 20, "other": 5},
                         [0] * 9 + [60])
    assert summ.samples == 120 and len(summ.chunks) == 2  # 2 × 60 ≥ 100, the drift is out
    steady = summ.score()
    assert steady is not None and steady["classes"] == 0.0 and 0 < steady["confidence"] < 0.3


def _publish(client: object, topic: str, payloads: list[dict]) -> None:
    for p in payloads:
        client.publish(topic, json.dumps(p), qos=1).wait_for_publish(5)  # type: ignore[attr-defined]


def test_fleet_view_counts_summary_messages(mosquitto: Mosquitto) -> None:
    import paho.mqtt.client as paho

    sha = "ab" * 32
    monitor = FleetMonitor(mosquitto.url, fleet="sum", record_alerts=False,
                           baselines={sha: BASELINE}, window=100)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    try:
        assert monitor.subscribed.wait(5)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        for dev in ("steady", "drifting"):
            _publish(client, f"tinyops/sum/{dev}/status", [{"state": "online",
                                                             "model_sha256": sha}])
        periods = [{"counts": {"normal": 10, "imbalance": 10, "bearing_fault": 10},
                    "confidence_hist": [0] * 8 + [3, 27]}] * 4
        drift = [{"counts": {"normal": 2, "imbalance": 2, "bearing_fault": 26},
                  "confidence_hist": [0] * 5 + [10, 0, 0, 0, 20]}] * 4
        for dev, body in (("steady", periods), ("drifting", drift)):
            _publish(client, f"tinyops/sum/{dev}/telemetry", [
                {"t": 1000 * i, "summary": {**s, "n": 30, "period_ms": 1000,
                                            "latency_us_p50": 1800 + i,
                                            "latency_us_p95": 2500 + i}}
                for i, s in enumerate(body)])
        _publish(client, "tinyops/sum/steady/telemetry", [{"summary": {"counts": {"x": -2}}}])
        deadline = time.monotonic() + 5
        while sum(d["messages"] + d["malformed"] for d in monitor.summary()["devices"]) < 9:
            assert time.monotonic() < deadline, monitor.summary()
            time.sleep(0.02)
    finally:
        client.disconnect()
        client.loop_stop()
        monitor.close()
    devices = {d["device_id"]: d for d in monitor.summary()["devices"]}
    ok, bad = devices["steady"], devices["drifting"]
    assert (ok["messages"], ok["summaries"], ok["inferences"], ok["malformed"]) == (4, 4, 120, 1)
    assert ok["class_distribution"] == {"bearing_fault": 0.3333, "imbalance": 0.3333,
                                        "normal": 0.3333}
    assert ok["latency_us_p50"] == 1802 and ok["latency_us_p95"] == 2502
    assert ok["drift"]["classes"] == 0.0 and ok["alerts"] == []
    assert bad["class_distribution"]["bearing_fault"] == pytest.approx(26 / 30, abs=1e-3)
    assert bad["drift_score"] > 0.2 and len(bad["alerts"]) == 1
    assert bad["alerts"][0]["window"] == 60  # raised once 50 results were in: 2 summaries
    window = monitor.devices["drifting"].window
    assert window is not None and window.samples == 120  # 90 < 100: the oldest one stays


def test_virtual_board_summaries_reach_the_fleet(board: VirtualBoard,
                                                 mosquitto: Mosquitto) -> None:
    monitor = FleetMonitor(mosquitto.url, fleet="sumsim", record_alerts=False)
    counted = Lines()
    monitor.on_counted = lambda _dev, data: counted(json.dumps(data).encode())
    publisher = None
    try:
        assert monitor.subscribed.wait(5)
        _stream(board, on=True, mode="summary", summary_period_ms=500)
        publisher = FleetPublisher(mosquitto.url, "vb-1", fleet="sumsim", board="nano33ble",
                                   model_sha256=board.loaded_model_sha256)
        publish.attach(board, publisher)
        counted.wait(3)
    finally:
        board.telemetry_hooks.clear()
        if publisher is not None:
            publisher.close()
        monitor.close()
    (dev,) = monitor.summary()["devices"]
    assert dev["summaries"] == dev["messages"] >= 3 and dev["malformed"] == 0
    assert dev["inferences"] >= 3 * 4 and dev["latency_us_p50"] > 0
    assert set(dev["class_distribution"]) <= set(LABELS)
