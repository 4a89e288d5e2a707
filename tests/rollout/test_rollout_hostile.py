"""Rollouts against misbehaving devices and rules that halt: a model too big for one device,
a device whose status is garbage, a forged ``installed`` for another sha256, a device that
refuses the model (failed twice, never a third time), a slow canary halted by the latency
rule and rolled back, a silent canary, pause/resume and abort requested from outside."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from rollout_harness import MODEL, OLD_MODEL, OPS, Run, step_of, wait_until

from fleet_ops.rollout.create import create_rollout
from fleet_ops.rollout.plan import DeviceStep, RolloutState
from fleet_ops.rollout.preflight import model_facts
from fleet_ops.rollout.store import RolloutStore
from fleet_ops.rollout.swarm import Swarm

TIMES: dict[str, float] = {}


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _store(tmp_path: Path) -> RolloutStore:
    return RolloutStore.open("", path=tmp_path / "records.sqlite")


class Impostors:
    """Three devices played by one client: ``dev-small`` (takes models up to 1000 B),
    ``dev-garbage`` (its status is not JSON), ``dev-forger`` (answers an offer with an
    'installed' for another sha256 and never pulls a byte)."""

    def __init__(self, url: str, fleet: str) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.fleet = fleet
        self.c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"impostors-{fleet}")
        self.c.on_message = self._message
        self.c.connect(host, int(port))
        self.c.loop_start()
        status = {"state": "online", "board": "virtual", "ops": OPS, "arena_max": 65536,
                  "model_sha256": "11" * 32}
        self.pub("dev-small", "status", json.dumps({**status, "model_max": 1000}), True)
        self.pub("dev-garbage", "status", b"\xff{not json", True)
        self.pub("dev-forger", "status", json.dumps({**status, "model_max": 262144}), True)
        self.c.subscribe(f"tinyops/{fleet}/dev-forger/update/offer", 1)

    def pub(self, device: str, kind: str, payload: Any, retain: bool) -> None:
        self.c.publish(f"tinyops/{self.fleet}/{device}/{kind}", payload, qos=1,
                       retain=retain).wait_for_publish(10)

    def _message(self, _c: Any, _u: Any, msg: Any) -> None:
        if not msg.payload:
            return
        offer = json.loads(msg.payload)
        forged = {"rollout": offer["rollout"], "action": "install", "sha256": "ee" * 32,
                  "outcome": "installed", "model_sha256": "ee" * 32, "reason": ""}
        self.c.publish(f"tinyops/{self.fleet}/dev-forger/update/result",
                       json.dumps(forged), qos=1, retain=True)

    def close(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_hostile_devices_are_skipped_or_failed_and_the_rollout_goes_on(
        rollout_broker: Any, tmp_path: Path) -> None:
    store = _store(tmp_path)
    n = 8
    ids = [f"sim-{i:05d}" for i in range(n)]
    swarm = Swarm(rollout_broker.url, "hostile", n, model=OLD_MODEL, rate_hz=5, ops=OPS)
    swarm.device(5).target.refuse = lambda _data: "flash write error at 0x8000"
    swarm.start()
    imp = Impostors(rollout_broker.url, "hostile")
    plan = create_rollout(store, MODEL, fleet="hostile", mqtt_url=rollout_broker.url,
                          devices=[*ids, "dev-small", "dev-garbage", "dev-forger"],
                          steps="100", health_window_s=2.0, rules="silent>0")
    try:
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "hostile", stall_s=3.0).start(plan.id).join(55)
        TIMES["hostile devices, rollout completes"] = time.monotonic() - t0
    finally:
        swarm.stop()
        imp.close()
    assert result.state == RolloutState.COMPLETED, result.halt_reason
    by = {e.device_id: e for e in store.devices(plan.id)}
    assert by["dev-small"].state == DeviceStep.SKIPPED
    assert "the device takes at most 1000 B" in (by["dev-small"].reason or "")
    assert by["dev-garbage"].state == DeviceStep.SKIPPED
    assert "no readable status" in (by["dev-garbage"].reason or "")
    forger = by["dev-forger"]
    assert forger.state == DeviceStep.FAILED and forger.attempts == 2
    forged = [e for e in store.events(plan.id) if e.kind == "forged"]
    assert forged and all(e.device_id == "dev-forger" for e in forged)
    assert forged[0].figures["sha256"] == "ee" * 32
    refuser = by["sim-00005"]
    assert refuser.state == DeviceStep.FAILED and refuser.attempts == 2
    assert "flash write error" in (refuser.reason or "")
    assert swarm.device(5).target.installs == 0
    assert swarm.device(5).model_sha256 == sha256_of(OLD_MODEL)  # still its old model
    healthy = [d for d in ids if by[d].state == DeviceStep.HEALTHY]
    assert len(healthy) == n - 1


def test_slow_canary_halts_on_latency_then_rolls_back(rollout_broker: Any,
                                                      tmp_path: Path) -> None:
    store = _store(tmp_path)
    n = 10
    plan = create_rollout(store, MODEL, fleet="slow", mqtt_url=rollout_broker.url,
                          devices=[f"sim-{i:05d}" for i in range(n)], steps="20,100",
                          health_window_s=3.0, rules="latency_p95>+20%,silent>0")
    canary = sorted(d for d, s in step_of(store, plan.id).items() if s == 0)
    swarm = Swarm(rollout_broker.url, "slow", n, model=OLD_MODEL, rate_hz=8, ops=OPS,
                  behaviours={int(d[4:]): "slow" for d in canary}).start()
    try:
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "slow").start(plan.id).join(45)
        TIMES["latency_p95>+20% halts"] = time.monotonic() - t0
        assert result.state == RolloutState.HALTED, result.halt_reason
        assert (result.halt_reason or "").startswith("latency_p95>+20%")
        halted = [e for e in store.events(plan.id) if e.kind == "halted"][-1]
        [b] = halted.figures["breaches"]
        assert sorted(b["devices"]) == canary and b["figure"] > 0.3
        store.request(plan.id, "rollback")
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "slow").start(plan.id).join(45)
        TIMES["rollback after the halt"] = time.monotonic() - t0
    finally:
        swarm.stop()
    assert result.state == RolloutState.ROLLED_BACK
    old = sha256_of(OLD_MODEL)
    new = model_facts(MODEL).sha256
    for d in swarm.devices:
        assert d.model_sha256 == old  # back on (or never left) the old model
        if d.device_id in canary:
            assert d.target.previous is not None and sha256_of(d.target.previous) == new
    states = {e.device_id: e.state for e in store.devices(plan.id)}
    assert {states[d] for d in canary} == {DeviceStep.ROLLED_BACK}
    assert {s for d, s in states.items() if d not in canary} == {DeviceStep.PENDING}


def test_silent_canary_halts(rollout_broker: Any, tmp_path: Path) -> None:
    store = _store(tmp_path)
    plan = create_rollout(store, MODEL, fleet="quiet", mqtt_url=rollout_broker.url,
                          devices=[f"sim-{i:05d}" for i in range(6)], steps="34,100",
                          health_window_s=3.0, rules="silent>0")
    canary = sorted(d for d, s in step_of(store, plan.id).items() if s == 0)
    swarm = Swarm(rollout_broker.url, "quiet", 6, model=OLD_MODEL, rate_hz=5, ops=OPS,
                  behaviours={int(canary[0][4:]): "silent"}).start()
    try:
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "quiet").start(plan.id).join(45)
        TIMES["silent>0 halts"] = time.monotonic() - t0
    finally:
        swarm.stop()
    assert result.state == RolloutState.HALTED and result.step_index == 0
    assert (result.halt_reason or "").startswith("silent>0") and canary[0] in result.halt_reason


def test_pause_resume_and_abort_requested_from_outside(rollout_broker: Any,
                                                       tmp_path: Path) -> None:
    store = _store(tmp_path)
    n = 6
    plan = create_rollout(store, MODEL, fleet="asked", mqtt_url=rollout_broker.url,
                          devices=[f"sim-{i:05d}" for i in range(n)], steps="34,67,100",
                          health_window_s=1.5, rules="silent>0")
    swarm = Swarm(rollout_broker.url, "asked", n, model=OLD_MODEL, rate_hz=5, ops=OPS).start()
    run = Run(store, rollout_broker.url, "asked").start(plan.id)
    try:
        wait_until(lambda: any(e.kind == "gate_passed" for e in run.events), 40, "a gate")
        other = RolloutStore.open("", path=tmp_path / "records.sqlite")  # another client
        other.request(plan.id, "pause")
        wait_until(lambda: store.get(plan.id).state == RolloutState.PAUSED, 5, "paused")
        installs = sum(d.target.installs for d in swarm.devices)
        time.sleep(2.0)  # paused: nothing moves (a check over time, not a synchronisation)
        assert sum(d.target.installs for d in swarm.devices) == installs
        other.request(plan.id, "resume")
        wait_until(lambda: store.get(plan.id).state == RolloutState.RUNNING, 5, "running")
        other.request(plan.id, "abort")
        result = run.join(30)
        other.close()
    finally:
        swarm.stop()
    assert result.state == RolloutState.ABORTED
    kinds = [e.kind for e in store.events(plan.id)]
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("aborted")
    assert all(d.target.installs <= 1 for d in swarm.devices)
