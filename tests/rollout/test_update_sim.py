"""``tinyops sim --mqtt`` (a real subprocess: the virtual board with its TFLM interpreter)
takes a model update over MQTT end to end, rolls back, refuses a bad model, and misbehaves
after an update when told to (``--after-update``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as paho
from update_fixtures import BUNDLED_MODEL, ROOT, broker, sha, wait_for

from device_drivers.link import DeviceSession
from fleet_ops.rollout.transfer import MqttUpdater, UpdateResult

OLD = BUNDLED_MODEL.read_bytes()
NEW = OLD + bytes(16)  # the same network, another file (a FlatBuffer ignores the tail)


@contextmanager
def sim(url: str, fleet: str, device_id: str, state: Path, *extra: str
        ) -> Iterator[tuple[subprocess.Popen[str], dict]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--mqtt", url, "--fleet", fleet,
         "--device-id", device_id, "--state", str(state), "--tcp", "0", "--json", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield proc, json.loads(line)
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


class Results:
    def __init__(self, updater: MqttUpdater) -> None:
        self.got: dict[str, UpdateResult] = {}
        updater.on_result(self._got)

    def _got(self, r: UpdateResult) -> None:
        if r.matches_offer:
            self.got[r.device_id] = r


def running_sha(port: str) -> str:
    with DeviceSession.open(port, timeout_s=5.0) as s:
        info = s.model_info()
        assert info is not None and info.loaded
        return bytes(info.sha256).hex()


def test_sim_takes_an_update_over_mqtt_rolls_back_and_refuses_a_bad_model(
        tmp_path: Path) -> None:
    with broker() as mq, sim(mq.url, "fsim", "sim-1", tmp_path / "state") as (_proc, info):
        assert info["device_id"] == "sim-1" and info["model_sha256"] == sha(OLD)
        updater = MqttUpdater(mq.url, "fsim")
        results = Results(updater)
        try:
            wait_for(lambda: updater.devices().get("sim-1", {}).get("arena_max"), 30,
                     "the sim's status with its update fields")
            status = updater.devices()["sim-1"]
            assert status["model_sha256"] == sha(OLD) and status["model_max"] > len(NEW)
            updater.offer("sim-1", "r1", NEW, sha(NEW), "install", "new.tflite")
            wait_for(lambda: "sim-1" in results.got, 60, "the install result")
            r = results.got.pop("sim-1")
            assert r.confirmed, r
            assert r.previous_sha256 == sha(OLD)
            assert running_sha(info["port"]) == sha(NEW)
            assert updater.bytes_sent("sim-1") <= 1.05 * len(NEW)
            wait_for(lambda: updater.devices()["sim-1"].get("model_sha256") == sha(NEW), 20,
                     "the status naming the new model")

            garbage = b"TFL3" * 600  # not a FlatBuffer: the runtime refuses it
            updater.offer("sim-1", "r2", garbage, sha(garbage), "install", "bad.tflite")
            wait_for(lambda: "sim-1" in results.got, 60, "the refused install's result")
            r = results.got.pop("sim-1")
            assert r.outcome == "failed" and "refused" in r.reason, r
            assert running_sha(info["port"]) == sha(NEW)  # it still runs the good model

            updater.offer("sim-1", "r1", b"", sha(OLD), "rollback", "old")
            wait_for(lambda: "sim-1" in results.got, 60, "the rollback result")
            r = results.got.pop("sim-1")
            assert r.confirmed and r.action == "rollback", r
            assert running_sha(info["port"]) == sha(OLD)
        finally:
            updater.close()


def test_sim_resumes_a_transfer_after_its_own_restart(tmp_path: Path) -> None:
    """The partial download is kept in --state: a restarted sim asks from where it was."""
    state = tmp_path / "state"
    with broker() as mq:
        updater = MqttUpdater(mq.url, "fres")
        results = Results(updater)
        try:
            big = NEW + bytes(200_000)
            with sim(mq.url, "fres", "sim-r", state) as (proc, _info):
                wait_for(lambda: "sim-r" in updater.devices(), 30, "the sim's status")
                updater.offer("sim-r", "r1", big, sha(big), "install", "big.tflite",
                              chunk=2048)
                part = state / "update" / "update.part"
                wait_for(lambda: part.is_file() and part.stat().st_size >= 20_000, 60,
                         "a partial download")
                proc.kill()
            kept = part.stat().st_size
            assert 0 < kept < len(big)
            with sim(mq.url, "fres", "sim-r", state) as (_proc, info):
                wait_for(lambda: "sim-r" in results.got, 60, "the install result")
                assert results.got["sim-r"].confirmed
                assert running_sha(info["port"]) == sha(big)
            # resumed from what it kept: only the chunks in flight at the kill went twice
            resent = updater.resent_bytes("sim-r")
            assert resent <= 5 * (2048 + 12) < kept, (resent, kept)
        finally:
            updater.close()


def test_after_update_silent_stops_telemetry_crash_stops_the_board_drift_drifts(
        tmp_path: Path) -> None:
    with broker() as mq:
        seen: dict[str, int] = {}
        lock = threading.Lock()

        states: list[str] = []

        def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
            with lock:
                seen[msg.topic] = seen.get(msg.topic, 0) + 1
                if msg.topic == "tinyops/fmis/drifty/telemetry":
                    states.append(json.loads(msg.payload).get("state"))

        watcher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watcher")
        watcher.on_message = on_message
        watcher.connect("127.0.0.1", mq.port)
        watcher.subscribe("tinyops/fmis/+/telemetry")
        watcher.loop_start()
        updater = MqttUpdater(mq.url, "fmis")
        results = Results(updater)
        try:
            with sim(mq.url, "fmis", "quiet", tmp_path / "a", "--after-update", "silent") \
                    as (_p, _i), \
                    sim(mq.url, "fmis", "crashy", tmp_path / "b", "--after-update", "crash") \
                    as (crashy, _j), \
                    sim(mq.url, "fmis", "drifty", tmp_path / "c", "--after-update", "drift",
                        "--condition-mix", "1,1,1") as (_d, _k):
                topic = "tinyops/fmis/quiet/telemetry"
                wait_for(lambda: seen.get(topic, 0) > 5, 60, "telemetry before the update")
                wait_for(lambda: len(states) >= 100, 60, "the drifty sim's telemetry")
                with lock:
                    steady = states.count("bearing_fault") / len(states)
                for dev in ("quiet", "crashy", "drifty"):
                    updater.offer(dev, "r1", NEW, sha(NEW), "install", "new.tflite")
                wait_for(lambda: {"quiet", "crashy", "drifty"} <= set(results.got), 60,
                         "the three results")
                with lock:
                    states.clear()
                wait_for(lambda: len(states) >= 100, 60, "telemetry after the update")
                with lock:
                    drifted = states.count("bearing_fault") / len(states)
                assert steady < 0.5 < 0.65 < drifted, (steady, drifted)
                assert all(r.confirmed for r in results.got.values())
                assert crashy.wait(30) == 1  # the board stopped after the update
                with lock:
                    after = seen.get(topic, 0)
                more = threading.Event()
                more.wait(3.0)  # the silent sim would have sent ~30 lines by now
                with lock:
                    assert seen.get(topic, 0) <= after + 1
        finally:
            watcher.loop_stop()
            updater.close()
