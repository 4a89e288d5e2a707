"""Hostile clients on the broker: every message goes through the one decoder and one
exception boundary; a canary device keeps being counted, memory stays bounded, the CLI's
text and JSON output survive bad retained statuses, NaN and bidi-override ids."""

from __future__ import annotations

import json
import time
import tracemalloc
from collections.abc import Iterator

import paho.mqtt.client as paho
import pytest
from fleet_servers import Mosquitto

from app.cli import main
from device_drivers.telemetry.message import BadMessage, decode_status, decode_telemetry
from fleet_ops.fleet.monitor import FleetMonitor


@pytest.fixture
def client(mosquitto: Mosquitto) -> Iterator[paho.Client]:
    c = paho.Client(paho.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", mosquitto.port)
    c.loop_start()
    yield c
    c.disconnect()
    c.loop_stop()


HOSTILE: list[tuple[str, bytes, str]] = [
    ("x", b"[" * 100_000 + b"]" * 100_000, "too large"),  # 200 kB nested
    ("x", b"[" * 1000 + b"]" * 1000, "too deeply nested"),
    ("x", b'{"pad": "' + b"x" * 2_000_000 + b'"}', "too large"),
    ("x", b'{"scores": {"a": NaN, "b": 0.1}}', "non-finite number"),
    ("x", b'{"scores": {"a": Infinity}}', "non-finite number"),
    ("x", b'{"scores": {"a": 1e999}}', "non-finite number"),
    ("x", b'{"latency_us": -Infinity}', "non-finite number"),
    ("x", '{"scores": {"\u202eevil": 1.0}}'.encode(), "bad label"),
    ("x", b'{"scores": {"a": 1}, "latency_us": "fast"}', "bad latency"),
    ("x", b'{"summary": {"counts": {"a": 1e30}}}', "bad summary"),
    ("x", b"\xff\xfe", "not UTF-8"),
    ("x", b"not json", "not JSON"),
    ("x", b"[1, 2]", "not a JSON object"),
    ("\u202eevil", b'{"scores": {"a": 1}}', "bad device id"),
    ("y" * 10_000, b'{"scores": {"a": 1}}', "bad device id"),
    ("a b", b'{"scores": {"a": 1}}', "bad device id"),
]


def test_decoder_limits_and_reasons() -> None:
    for _device, payload, reason in HOSTILE:
        if "device id" in reason:
            continue
        with pytest.raises(BadMessage) as info:
            decode_telemetry(payload)
        assert info.value.reason == reason, (payload[:40], info.value.reason)
    good = decode_telemetry(b'{"t": 1, "scores": {"normal": 0.9, "fault": 0.1}, "latency_us": 5}')
    assert good["scores"] == {"normal": 0.9, "fault": 0.1} and good["latency_us"] == 5
    for bad in (b'{"state": 5}', b'{"state": "online", "board": ["x"]}', b'{"board": "b"}',
                '{"state": "on\u202eline"}'.encode()):
        with pytest.raises(BadMessage):
            decode_status(bad)
    assert decode_status(b'{"state": "online", "extra": [1]}') == {"state": "online"}


def _canary(client: paho.Client, fleet: str, i: int) -> None:
    client.publish(f"tinyops/{fleet}/canary/telemetry",
                   json.dumps({"seq": i, "scores": {"ok": 1.0}}), qos=1).wait_for_publish(10)


def test_hostile_set_leaves_the_view_counting(mosquitto: Mosquitto,
                                              client: paho.Client) -> None:
    fleet = "hostile"
    monitor = FleetMonitor(mosquitto.url, fleet=fleet, record_alerts=False, max_devices=500)
    sent = 0
    try:
        assert monitor.subscribed.wait(5)
        for device, payload, _ in HOSTILE:
            _canary(client, fleet, sent)
            sent += 1
            client.publish(f"tinyops/{fleet}/{device}/telemetry", payload,
                           qos=1).wait_for_publish(10)
        client.publish(f"tinyops/{fleet}/st/status", b'{"state": 5}', qos=1,
                       retain=True).wait_for_publish(5)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(10_000):  # 10 000 ids; the canary keeps talking
            client.publish(f"tinyops/{fleet}/id{i}/telemetry", b'{"scores": {"a": 1}}', qos=0)
            if i % 200 == 0:
                _canary(client, fleet, sent)
                sent += 1
        _canary(client, fleet, sent)
        sent += 1
        deadline = time.monotonic() + 30
        while monitor.devices.get("canary") is None or \
                monitor.devices["canary"].messages < sent:
            assert time.monotonic() < deadline, (sent, monitor.summary())
            time.sleep(0.05)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        summary = monitor.summary()
    finally:
        monitor.close()
    canary = next(d for d in summary["devices"] if d["device_id"] == "canary")
    assert canary["messages"] == sent and canary["class_distribution"] == {"ok": 1.0}
    reasons = summary["malformed_reasons"]
    expected: dict[str, int] = {}
    for _, _, reason in HOSTILE:
        expected[reason] = expected.get(reason, 0) + 1
    expected["bad status state"] = 1
    assert reasons == expected, reasons
    assert len(summary["devices"]) <= 500 and summary["dropped_devices"] >= 9_500
    print(f"10 000 ids: {len(summary['devices'])} tracked, {summary['dropped_devices']} "
          f"dropped, memory grew {grown / 1e6:.1f} MB")
    assert grown < 20e6
    assert all(d["device_id"].isascii() and len(d["device_id"]) <= 64
               for d in summary["devices"])


def test_cli_survives_bad_retained_status_and_prints_strict_json(
        mosquitto: Mosquitto, client: paho.Client, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = "retained"
    for device, payload in (("bad-1", b'{"state": 5}'), ("bad-2", b'{"state": ["x"]}'),
                            ("good-1", b'{"state": "online", "board": "nano33ble"}')):
        client.publish(f"tinyops/{fleet}/{device}/status", payload, qos=1,
                       retain=True).wait_for_publish(5)
    client.publish(f"tinyops/{fleet}/good-1/telemetry", b'{"scores": {"a": NaN}}',
                   qos=1, retain=True).wait_for_publish(5)  # retained: each run gets it
    assert main(["fleet", "--mqtt", mosquitto.url, "--fleet", fleet, "--duration", "1"]) == 0
    out = capsys.readouterr().out
    assert "good-1" in out and "3 malformed messages dropped" in out, out
    assert "bad status state 2" in out and "non-finite number 1" in out
    assert main(["fleet", "--mqtt", mosquitto.url, "--fleet", fleet, "--duration", "1",
                 "--json"]) == 0

    def refuse(name: str) -> None:
        raise AssertionError(f"{name} in --json output")

    data = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert [d["device_id"] for d in data["devices"]] == ["good-1"]
    assert data["broker"]["connected"] and data["malformed"] == 3
