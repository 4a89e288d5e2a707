"""Rollouts end to end: simulated MQTT devices (``swarm``) on a real Mosquitto, the real
update protocol (``MqttUpdater``), the fleet view for health, the store on SQLite or a real
PostgreSQL (killed mid-rollout)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rollout_harness import MODEL, OLD_MODEL, OPS, Run, kinds, step_of

from fleet_ops.rollout.create import create_rollout
from fleet_ops.rollout.plan import DeviceStep, RolloutState
from fleet_ops.rollout.preflight import model_facts
from fleet_ops.rollout.store import RolloutStore
from fleet_ops.rollout.swarm import Swarm

TIMES: dict[str, float] = {}


def _ids(n: int) -> list[str]:
    return [f"sim-{i:05d}" for i in range(n)]


def _store(tmp_path: Path) -> RolloutStore:
    return RolloutStore.open("", path=tmp_path / "records.sqlite")


def test_drift_on_the_canary_halts_the_rollout_naming_the_rule(rollout_broker: Any,
                                                                tmp_path: Path) -> None:
    """50 devices, 5 drift once updated, 3 of them in the canary: the canary's gate halts
    the rollout on drift>0.2, naming them; no device past the canary is touched."""
    store = _store(tmp_path)
    plan = create_rollout(store, MODEL, fleet="drift50", mqtt_url=rollout_broker.url,
                          devices=_ids(50), steps="5,25,50,100", health_window_s=6.0,
                          rules="drift>0.2,failed>2%")
    steps = step_of(store, plan.id)
    canary = sorted(d for d, s in steps.items() if s == 0)
    later = sorted(d for d, s in steps.items() if s == 1)[:2]
    drifting = {int(d[4:]): "drift" for d in canary + later}
    assert len(canary) == 3 and len(drifting) == 5
    swarm = Swarm(rollout_broker.url, "drift50", 50, model=OLD_MODEL, rate_hz=12,
                  behaviours=drifting, ops=OPS).start()
    try:
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "drift50").start(plan.id).join(50)
        TIMES["drift halts at the canary"] = time.monotonic() - t0
    finally:
        swarm.stop()
    assert result.state == RolloutState.HALTED and result.step_index == 0
    assert result.halt_reason and result.halt_reason.startswith("drift>0.2")
    halted = [e for e in store.events(plan.id) if e.kind == "halted"][-1]
    [breach] = halted.figures["breaches"]
    assert breach["metric"] == "drift" and breach["figure"] > 0.2
    assert sorted(breach["devices"]) == canary
    assert all(breach["figures"][d] > 0.2 for d in canary)
    updated = {d.device_id for d in swarm.devices if d.target.installs}
    assert updated == set(canary)  # nothing sent past the canary
    assert all(d.target.installs == 1 for d in swarm.devices if d.device_id in canary)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_clean_rollout_reaches_every_device_once(backend: str, rollout_broker: Any,
                                                 tmp_path: Path,
                                                 request: pytest.FixtureRequest) -> None:
    store = _store(tmp_path) if backend == "sqlite" else \
        RolloutStore.open(request.getfixturevalue("rollout_pg").url())
    n = 20
    plan = create_rollout(store, MODEL, fleet="clean", mqtt_url=rollout_broker.url,
                          devices=_ids(n), steps="5,25,50,100", health_window_s=2.5,
                          rules="drift>0.2,failed>2%,silent>0,latency_p95>+20%")
    swarm = Swarm(rollout_broker.url, "clean", n, model=OLD_MODEL, rate_hz=8, ops=OPS).start()
    try:
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "clean").start(plan.id).join(55)
        TIMES[f"clean rollout completes ({backend})"] = time.monotonic() - t0
    finally:
        swarm.stop()
    assert result.state == RolloutState.COMPLETED, result.halt_reason
    counts = store.counts(plan.id)
    assert counts[DeviceStep.HEALTHY] == n
    size = model_facts(MODEL).size
    new = model_facts(MODEL).sha256
    for dev in swarm.devices:
        assert dev.target.installs == 1 and dev.model_sha256 == new
    for e in store.devices(plan.id):
        assert size <= e.bytes_sent <= 1.05 * size + 2048, e
        assert e.attempts == 1 and e.previous_sha256 is not None
    k = kinds(store, plan.id)
    assert k.count("gate_passed") == 4 and k[-1] == "completed"
    assert k.count("installed") == n
    store.close()
