"""Fleet telemetry on a real Mosquitto: virtual boards publish, `tinyops fleet` summarises,
a drifting board raises an alert (and a record), bad input is one line, junk is counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fleet_servers import Mosquitto, error_lines, free_port

from app.cli import main
from device_drivers import paths
from fleet_ops.fleet.drift import js_distance
from fleet_ops.fleet.monitor import FleetMonitor
from fleet_ops.records import open_store

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = paths.resources_dir() / "examples" / "vibration"


@pytest.fixture(scope="module")
def card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled model's card with the drift baseline quantize would write (same code)."""
    from model_tools.baseline import drift_baseline
    from model_tools.evaluate import run_as_device
    from model_tools.verify import verify_tflite

    model = verify_tflite((EXAMPLE / "model_int8.tflite").read_bytes())
    data = np.load(EXAMPLE / "eval.npz")
    outputs = run_as_device(model, data["x"].astype(np.float32)).outputs
    body = json.loads((EXAMPLE / "model_int8.tflite.card.json").read_text())
    body["drift_baseline"] = drift_baseline(outputs, body["labels"])
    path = tmp_path_factory.mktemp("card") / "model_int8.tflite.card.json"
    path.write_text(json.dumps(body))
    return path


class Sims:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> dict[str, object]:
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "sim", "--json", *args],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=dict(os.environ))
        self.procs.append(proc)
        line = proc.stdout.readline() if proc.stdout else ""
        assert line, proc.stderr.read() if proc.stderr else "no output"
        return json.loads(line)

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            proc.communicate(timeout=20)


@pytest.fixture
def sims() -> Iterator[Sims]:
    s = Sims()
    try:
        yield s
    finally:
        s.stop()


def test_two_boards_in_the_fleet_a_drifting_one_alerts(mosquitto: Mosquitto, card: Path,
                                                       sims: Sims,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    steady = sims.start("--mqtt", mosquitto.url, "--device-id", "press-01",
                        "--condition-mix", "1,1,1", "--seed", "1")
    drifting = sims.start("--mqtt", mosquitto.url, "--device-id", "press-02", "--drift",
                          "--seed", "2")
    assert steady["mqtt"] == "tinyops/default/press-01/telemetry"
    assert main(["fleet", "--mqtt", mosquitto.url, "--duration", "8", "--window", "100",
                 "--card", str(card), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    devices = {d["device_id"]: d for d in out["devices"]}
    assert set(devices) == {"press-01", "press-02"}
    for dev, sim in ((devices["press-01"], steady), (devices["press-02"], drifting)):
        assert dev["model_sha256"] == sim["model_sha256"] and dev["state"] == "online"
        assert dev["messages"] >= 50 and dev["latency_us_p50"] > 0
        assert dev["latency_us_p95"] >= dev["latency_us_p50"] and dev["last_seen"]
        assert set(dev["class_distribution"]) <= {"normal", "imbalance", "bearing_fault"}
    ok, bad = devices["press-01"], devices["press-02"]
    print("steady", ok["drift"], ok["class_distribution"], "drifting", bad["drift"],
          bad["class_distribution"])
    assert ok["drift_score"] < 0.2 and ok["alerts"] == []
    assert bad["drift_score"] > 0.2 and len(bad["alerts"]) == 1
    assert bad["class_distribution"]["bearing_fault"] > 0.6
    assert out["alert_records"] == 1
    (rec,) = open_store().list(operation="drift")
    assert rec.usb_serial == "press-02" and rec.result == "alert"
    assert rec.artifact_sha256 == drifting["model_sha256"]


def test_malformed_payloads_are_dropped_and_counted(mosquitto: Mosquitto) -> None:
    import paho.mqtt.client as paho

    monitor = FleetMonitor(mosquitto.url, fleet="junk", record_alerts=False)
    try:
        assert monitor.subscribed.wait(5)
        client = paho.Client(paho.CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        topic = "tinyops/junk/dev-1/telemetry"
        for payload in (b"not json", b"[1, 2]", b'{"scores": {"a": "high"}}', b"\xff\xfe",
                        b'{"scores": {"a": 0.9, "b": 0.1}, "latency_us": 1200}'):
            client.publish(topic, payload, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 5
        while monitor.summary()["devices"] == [] or \
                monitor.summary()["devices"][0]["messages"] < 1:
            assert time.monotonic() < deadline, monitor.summary()
            time.sleep(0.02)
        client.disconnect()
        client.loop_stop()
    finally:
        monitor.close()
    summary = monitor.summary()
    (dev,) = summary["devices"]
    assert (summary["malformed"], dev["malformed"], dev["messages"]) == (4, 4, 1)
    assert dev["class_distribution"] == {"a": 1.0} and dev["latency_us_p50"] == 1200


def test_bad_broker_and_device_id_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [(["fleet", "--mqtt", "http://x", "--duration", "0"], 2, "bad MQTT URL"),
             (["fleet", "--mqtt", f"mqtt://127.0.0.1:{free_port()}", "--duration", "0"], 1,
              "cannot reach the MQTT broker"),
             (["sim", "--mqtt", "mqtt://127.0.0.1:1", "--device-id", "a/b#"], 2,
              "invalid device id")]
    for argv, code, text in cases:
        assert main(argv) == code, argv
        err = error_lines(capsys.readouterr().err)
        assert text in err[0] and err[1].startswith("  fix:") and len(err) == 2, err


def test_js_distance_bounds() -> None:
    assert js_distance([1, 1, 1], [2, 2, 2]) == 0.0
    assert js_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert 0 < js_distance([1, 1, 8], [1, 1, 1]) < 1


def test_bridge_forwards_a_serial_board(mosquitto: Mosquitto, sims: Sims) -> None:
    board = sims.start("--seed", "3")  # a board on a pty, no MQTT of its own
    monitor = FleetMonitor(mosquitto.url, fleet="line2", record_alerts=False)
    try:
        assert monitor.subscribed.wait(5)
        done = subprocess.run([sys.executable, "-m", "app.cli", "bridge", "--port",
                               str(board["port"]), "--mqtt", mosquitto.url, "--fleet", "line2",
                               "--device-id", "usb-7", "--duration", "3", "--json"],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        deadline = time.monotonic() + 5
        while not monitor.devices.get("usb-7") or \
                monitor.devices["usb-7"].messages < result["forwarded"]:
            assert time.monotonic() < deadline, (result, monitor.summary())
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while monitor.devices["usb-7"].status.get("state") != "offline":
            assert time.monotonic() < deadline, monitor.summary()
            time.sleep(0.02)
    finally:
        monitor.close()
    (dev,) = monitor.summary()["devices"]
    assert result["forwarded"] >= 15 and dev["messages"] == result["forwarded"]
    assert dev["model_sha256"] == board["model_sha256"] and dev["board"] == "virtual"
    assert dev["latency_us_p50"] > 0 and dev["malformed"] == 0


def test_baseline_written_by_quantize_code() -> None:
    from model_tools.baseline import drift_baseline

    out = np.array([[0.9, 0.1], [0.2, 0.8], [0.45, 0.55], [0.7, 0.3]])
    base = drift_baseline(out, ["a", "b"])
    assert base is not None and base["class_distribution"] == [0.5, 0.5]
    assert base["confidence_histogram"][5] == 0.25 and base["confidence_histogram"][9] == 0.25
    assert sum(base["confidence_histogram"]) == pytest.approx(1.0)
    assert drift_baseline(np.zeros((3, 1)), None) is None
