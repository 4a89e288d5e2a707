"""The MQTT model-update protocol end to end: ``MqttUpdater`` against swarm devices
(``UpdateAgent`` + ``MemoryTarget``) through a real Mosquitto started by the test."""

from __future__ import annotations

import json
import threading

import pytest
from update_fixtures import broker, model_bytes, sha, wait_for

from fleet_ops.rollout.agent import HEADER, MemoryTarget, UpdateAgent
from fleet_ops.rollout.swarm import Swarm
from fleet_ops.rollout.transfer import MqttUpdater, UpdateResult

OLD = model_bytes(12_000, 1)
NEW = model_bytes(11_440, 2)


class Results:
    def __init__(self, updater: MqttUpdater) -> None:
        self.by_device: dict[str, UpdateResult] = {}
        self.all: list[UpdateResult] = []
        self.lock = threading.Lock()
        updater.on_result(self._got)

    def _got(self, r: UpdateResult) -> None:
        with self.lock:
            self.all.append(r)
            if r.matches_offer:
                self.by_device[r.device_id] = r

    def confirmed(self, ids: list[str]) -> bool:
        with self.lock:
            return all(i in self.by_device and self.by_device[i].confirmed for i in ids)


def test_twenty_devices_take_a_model_within_5_percent_of_its_size() -> None:
    with broker() as mq:
        swarm = Swarm(mq.url, "t20", 20, model=OLD, rate_hz=0).start()
        updater = MqttUpdater(mq.url, "t20")
        try:
            results = Results(updater)
            assert updater.subscribed.wait(10)
            for dev_id in swarm.ids:
                updater.offer(dev_id, "r1", NEW, sha(NEW), "install", "new.tflite")
            wait_for(lambda: results.confirmed(swarm.ids), 60, "20 confirmed installs")
            for dev in swarm.devices:
                assert dev.target.current == NEW and dev.target.previous == OLD
                ratio = updater.bytes_sent(dev.device_id) / len(NEW)
                assert 1.0 <= ratio <= 1.05, (dev.device_id, ratio)
                assert updater.resent_bytes(dev.device_id) == 0
            assert not updater.pending()  # every offer answered and cleared
            wait_for(lambda: all(updater.devices().get(i, {}).get("model_sha256") == sha(NEW)
                                 for i in swarm.ids), 20, "statuses with the new sha256")
            status = updater.devices()[swarm.ids[0]]
            assert status["previous_sha256"] == sha(OLD) and status["update"] == "idle"
            assert {"ops", "arena_max", "model_max", "board"} <= set(status)
            # offered again: installed at once, not one byte sent again
            before = updater.bytes_sent(swarm.ids[0])
            results.by_device.clear()
            updater.offer(swarm.ids[0], "r1", NEW, sha(NEW), "install", "new.tflite")
            wait_for(lambda: results.confirmed(swarm.ids[:1]), 20, "the repeated offer")
            assert updater.bytes_sent(swarm.ids[0]) == before
            assert swarm.device(0).target.installs == 1
        finally:
            updater.close()
            swarm.stop()


def test_broker_killed_mid_transfer_every_device_finishes_uncorrupted() -> None:
    big = model_bytes(256 * 1024, 3)
    with broker() as mq:
        swarm = Swarm(mq.url, "tkill", 20, model=OLD, rate_hz=0).start()
        updater = MqttUpdater(mq.url, "tkill")
        try:
            results = Results(updater)
            assert updater.subscribed.wait(10)
            for dev_id in swarm.ids:
                updater.offer(dev_id, "r2", big, sha(big), "install", "big.tflite", chunk=1024)
            total = len(big) * len(swarm.devices)

            def received() -> int:
                return sum(d.agent.bytes_received for d in swarm.devices)

            wait_for(lambda: received() > total * 0.1, 60, "10 % of the transfer")
            mq.kill()
            at_kill = received()
            assert at_kill < total, "the transfer ended before the broker was killed"
            mq.start()  # same port, empty (no persistence): offers must be published again
            wait_for(lambda: results.confirmed(swarm.ids), 120, "20 installs after the restart")
            for dev in swarm.devices:
                assert dev.target.current == big and sha(dev.target.current) == sha(big)
            rewants = sum(d.agent.rewants for d in swarm.devices)
            resent = sum(updater.resent_bytes(i) for i in swarm.ids)
            sent = sum(updater.bytes_sent(i) for i in swarm.ids)
            assert rewants > 0 and sent >= total
            assert sent - resent <= total * 1.05  # what was not a resend is the model once
            print(f"broker kill at {at_kill / total:.0%}: sent {sent / total:.3f}x, "
                  f"resent {resent} B, rewants {rewants}")
        finally:
            updater.close()
            swarm.stop()


def test_wrong_sha256_fails_and_the_previous_model_stays() -> None:
    with broker() as mq:
        swarm = Swarm(mq.url, "tbad", 2, model=OLD, rate_hz=0).start()
        updater = MqttUpdater(mq.url, "tbad")
        try:
            results = Results(updater)
            assert updater.subscribed.wait(10)
            updater.offer(swarm.ids[0], "r3", NEW, sha(b"another model"), "install", "x")
            wait_for(lambda: swarm.ids[0] in results.by_device, 30, "the failed result")
            r = results.by_device[swarm.ids[0]]
            assert r.outcome == "failed" and "sha256 mismatch" in r.reason
            assert not r.confirmed and r.model_sha256 == sha(OLD)
            assert swarm.device(0).target.current == OLD
            # rollback to a model the device does not hold: it says so
            updater.offer(swarm.ids[1], "r3", b"", sha(NEW), "rollback", "x")
            wait_for(lambda: swarm.ids[1] in results.by_device, 30, "the rollback result")
            r = results.by_device[swarm.ids[1]]
            assert r.outcome == "failed" and "not held" in r.reason
        finally:
            updater.close()
            swarm.stop()


def test_rollback_returns_to_the_held_model_without_a_transfer() -> None:
    with broker() as mq:
        swarm = Swarm(mq.url, "trb", 3, model=OLD, rate_hz=0).start()
        updater = MqttUpdater(mq.url, "trb")
        try:
            results = Results(updater)
            assert updater.subscribed.wait(10)
            for dev_id in swarm.ids:
                updater.offer(dev_id, "r4", NEW, sha(NEW), "install", "new")
            wait_for(lambda: results.confirmed(swarm.ids), 30, "installs")
            sent = {i: updater.bytes_sent(i) for i in swarm.ids}
            results.by_device.clear()
            for dev_id in swarm.ids:
                updater.offer(dev_id, "r4", b"", sha(OLD), "rollback", "old")
            wait_for(lambda: results.confirmed(swarm.ids), 30, "rollbacks")
            for dev in swarm.devices:
                assert dev.target.current == OLD and dev.target.previous == NEW
                assert updater.bytes_sent(dev.device_id) == sent[dev.device_id]
        finally:
            updater.close()
            swarm.stop()


def test_a_forged_installed_report_for_another_sha256_is_not_a_success() -> None:
    import paho.mqtt.client as paho

    with broker() as mq:
        updater = MqttUpdater(mq.url, "tforge")
        results = Results(updater)
        rogue = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="rogue")
        try:
            assert updater.subscribed.wait(10)
            updater.offer("dev-1", "r5", NEW, sha(NEW), "install", "new")
            rogue.connect("127.0.0.1", mq.port)
            rogue.loop_start()
            forged = {"rollout": "r5", "action": "install", "sha256": sha(NEW),
                      "outcome": "installed", "reason": "", "model_sha256": sha(OLD)}
            rogue.publish("tinyops/tforge/dev-1/update/result", json.dumps(forged), qos=1,
                          retain=True).wait_for_publish(5)
            rogue.publish("tinyops/tforge/dev-1/update/want", b"\x00not json", qos=1)
            other = dict(forged, sha256=sha(OLD))
            rogue.publish("tinyops/tforge/dev-2/update/result", json.dumps(other), qos=1)
            wait_for(lambda: len(results.all) >= 2, 20, "both forged reports")
            assert not any(r.confirmed for r in results.all)
            wait_for(lambda: updater.bad_messages >= 1, 10, "the bad want counted")
        finally:
            rogue.loop_stop()
            rogue.disconnect()
            updater.close()


@pytest.mark.parametrize("how", ["flipped", "another-model"])
def test_a_corrupted_chunk_fails_the_update_and_keeps_the_model(how: str) -> None:
    sent: list[tuple[str, bytes]] = []
    target = MemoryTarget(OLD)
    agent = UpdateAgent("f", "d1", target, lambda t, p, q, r: sent.append((t, p)),
                        installer=lambda job: job())
    offer = {"rollout": "r6", "action": "install", "sha256": sha(NEW), "size": len(NEW),
             "chunk": 4096}
    agent.handle("tinyops/f/d1/update/offer", json.dumps(offer).encode())
    want = json.loads(sent[-1][1])
    assert (want["offset"], want["length"]) == (0, len(NEW))
    prefix = bytes.fromhex(sha(NEW))[:8]
    for at in range(0, len(NEW), 4096):
        part = bytearray(NEW[at:at + 4096])
        if at == 4096 and how == "flipped":
            part[100] ^= 0x01
        header_sha = prefix if how == "flipped" or at != 0 else bytes.fromhex(sha(OLD))[:8]
        agent.handle("tinyops/f/d1/update/chunk", HEADER.pack(header_sha, at) + bytes(part))
    if how == "another-model":  # another model's chunk is ignored; the right one completes it
        assert agent.ignored_chunks == 3 and agent.state == "receiving"
        return
    result = json.loads(sent[-1][1])
    assert sent[-1][0] == "tinyops/f/d1/update/result"
    assert result["outcome"] == "failed" and "sha256 mismatch" in result["reason"]
    assert target.current == OLD and result["model_sha256"] == sha(OLD)


def test_orchestrator_and_device_restarts_mid_transfer_resume_where_the_device_is() -> None:
    big = model_bytes(128 * 1024, 4)
    with broker() as mq:
        swarm = Swarm(mq.url, "trs", 5, model=OLD, rate_hz=0).start()
        first = MqttUpdater(mq.url, "trs")
        try:
            assert first.subscribed.wait(10)
            for dev_id in swarm.ids:
                first.offer(dev_id, "r7", big, sha(big), "install", "big", chunk=1024)
            wait_for(lambda: min(d.agent.bytes_received for d in swarm.devices) > 8192, 60,
                     "every device under way")
            first.close()  # the orchestrator dies; its offers stay retained
            swarm.restart(0)  # and a device reboots meanwhile
            had = {d.device_id: d.agent.bytes_received for d in swarm.devices}
            assert all(n < len(big) for n in had.values())
            second = MqttUpdater(mq.url, "trs")
            results = Results(second)
            assert second.subscribed.wait(10)
            for dev_id in swarm.ids:  # the restarted orchestrator offers again
                second.offer(dev_id, "r7", big, sha(big), "install", "big", chunk=1024)
            wait_for(lambda: results.confirmed(swarm.ids), 60, "installs after the restarts")
            for dev in swarm.devices:
                assert dev.target.current == big
                # the second orchestrator sent only what the device lacked (+ what was in flight)
                lacked = len(big) - had[dev.device_id]
                assert second.bytes_sent(dev.device_id) <= lacked * 1.05 + 8 * 1036, \
                    (dev.device_id, second.bytes_sent(dev.device_id), lacked)
            second.close()
        finally:
            swarm.stop()


def test_swarm_devices_misbehave_only_after_an_update() -> None:
    import paho.mqtt.client as paho

    behaviours = {1: "drift", 2: "slow", 3: "garbage", 4: "silent"}
    with broker() as mq:
        seen: dict[str, list[bytes]] = {}
        lock = threading.Lock()

        def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
            with lock:
                seen.setdefault(msg.topic, []).append(msg.payload)

        watcher = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="watch")
        watcher.on_message = on_message
        watcher.connect("127.0.0.1", mq.port)
        watcher.subscribe([("tinyops/tmis/+/telemetry", 0), ("tinyops/tmis/+/status", 1)])
        watcher.loop_start()
        swarm = Swarm(mq.url, "tmis", 5, model=OLD, rate_hz=20, behaviours=behaviours).start()
        updater = MqttUpdater(mq.url, "tmis")
        try:
            results = Results(updater)

            def telemetry(i: int) -> list[dict]:
                with lock:
                    return [json.loads(p) for p in seen.get(f"tinyops/tmis/{swarm.ids[i]}/"
                                                            "telemetry", [])]

            wait_for(lambda: all(len(telemetry(i)) >= 40 for i in range(5)), 30,
                     "telemetry before the update")
            before = [telemetry(i) for i in range(5)]
            assert all(max(m["latency_us"] for m in b) < 1900 for b in before)
            assert updater.subscribed.wait(10)
            for dev_id in swarm.ids:
                updater.offer(dev_id, "r8", NEW, sha(NEW), "install", "new")
            wait_for(lambda: results.confirmed(swarm.ids), 30, "installs")
            with lock:
                seen.clear()
            wait_for(lambda: all(len(telemetry(i)) >= 200 for i in range(4)), 60,
                     "telemetry after the update")

            def share(i: int, label: str) -> float:
                msgs = telemetry(i)
                top = [max(m["scores"], key=m["scores"].get) for m in msgs]
                return top.count(label) / len(top)

            assert share(0, "bearing_fault") < 0.5 < 0.65 < share(1, "bearing_fault")
            mean = [sum(m["latency_us"] for m in telemetry(i)) / len(telemetry(i))
                    for i in (0, 2)]
            assert 1.4 < mean[1] / mean[0] < 1.6
            assert telemetry(4) == []  # silent since its update
            wait_for(lambda: any(p.startswith(b"\xff") for p in
                                 seen.get(f"tinyops/tmis/{swarm.ids[3]}/status", [])), 30,
                     "the garbage status")
            wait_for(lambda: updater.bad_statuses().get(swarm.ids[3], 0) >= 1, 10,
                     "the garbage status counted by the updater")
            assert set(updater.bad_statuses()) == {swarm.ids[3]}
        finally:
            watcher.loop_stop()
            updater.close()
            swarm.stop()


def test_a_model_too_large_for_the_device_fails_before_a_byte_is_sent() -> None:
    with broker() as mq:
        swarm = Swarm(mq.url, "tbig", 1, model=OLD, rate_hz=0, model_max=8192).start()
        updater = MqttUpdater(mq.url, "tbig")
        try:
            results = Results(updater)
            assert updater.subscribed.wait(10)
            updater.offer(swarm.ids[0], "r9", NEW, sha(NEW), "install", "new")
            wait_for(lambda: swarm.ids[0] in results.by_device, 30, "the refusal")
            r = results.by_device[swarm.ids[0]]
            assert r.outcome == "failed" and "does not fit" in r.reason
            assert updater.bytes_sent(swarm.ids[0]) == 0
            assert swarm.device(0).target.current == OLD
        finally:
            updater.close()
            swarm.stop()


def test_hostile_offers_are_ignored_by_the_device() -> None:
    sent: list[tuple[str, bytes]] = []
    target = MemoryTarget(OLD)
    agent = UpdateAgent("f", "d1", target, lambda t, p, q, r: sent.append((t, p)),
                        installer=lambda job: job())
    for bad in (b"\x00garbage", b"[]", b'{"rollout": "r", "sha256": "zz"}',
                json.dumps({"rollout": "r", "sha256": sha(NEW), "size": -1}).encode(),
                json.dumps({"rollout": "r", "sha256": sha(NEW), "action": "erase"}).encode(),
                json.dumps({"rollout": "r", "sha256": sha(NEW), "chunk": 10**9}).encode()):
        agent.handle("tinyops/f/d1/update/offer", bad)
    agent.handle("tinyops/f/d1/update/chunk", b"short")
    assert sent == [] and agent.state == "idle" and target.current == OLD
