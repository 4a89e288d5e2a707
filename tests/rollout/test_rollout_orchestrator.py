"""Rollouts end to end: simulated MQTT devices (``swarm``) on a real Mosquitto, the real
update protocol (``MqttUpdater``), the fleet view for health, the store on SQLite or a real
PostgreSQL (killed mid-rollout)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from rollout_harness import MODEL, OLD_MODEL, OPS, Run, kinds, step_of, wait_until

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


def test_one_drifting_canary_device_halts_on_drifting_although_the_mean_stays_low(
        rollout_broker: Any, tmp_path: Path) -> None:
    """50 devices, 5 drift once updated, only 1 of them in the canary of 5: the mean drift of
    the canary stays under drift>0.2 (one drifting device scores ~0.5, the others ~0.05), but
    drifting>10% (its own alert fired: 1 of 5) halts it there."""
    store = _store(tmp_path)
    plan = create_rollout(store, MODEL, fleet="drift1of5", mqtt_url=rollout_broker.url,
                          devices=_ids(50), steps="10,25,50,100", health_window_s=6.0,
                          rules="drift>0.2,drifting>10%,failed>2%")
    steps = step_of(store, plan.id)
    canary = sorted(d for d, s in steps.items() if s == 0)
    later = sorted(d for d, s in steps.items() if s >= 1)[:4]
    drifting = {int(d[4:]): "drift" for d in canary[:1] + later}
    assert len(canary) == 5 and len(drifting) == 5
    swarm = Swarm(rollout_broker.url, "drift1of5", 50, model=OLD_MODEL, rate_hz=12,
                  behaviours=drifting, ops=OPS).start()
    try:
        t0 = time.monotonic()
        result = Run(store, rollout_broker.url, "drift1of5").start(plan.id).join(50)
        TIMES["one drifting canary device halts on drifting"] = time.monotonic() - t0
    finally:
        swarm.stop()
    assert result.state == RolloutState.HALTED and result.step_index == 0
    assert result.halt_reason and result.halt_reason.startswith("drifting>10%")
    halted = [e for e in store.events(plan.id) if e.kind == "halted"][-1]
    by_metric = {b["metric"]: b for b in halted.figures["breaches"]}
    assert "drift" not in by_metric  # the canary's mean alone would have let it through
    assert by_metric["drifting"]["devices"] == canary[:1]
    updated = {d.device_id for d in swarm.devices if d.target.installs}
    assert updated == set(canary)


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


def test_postgres_killed_mid_rollout_loses_no_decision(rollout_broker: Any,
                                                       rollout_pg: Any) -> None:
    """PostgreSQL stopped at once (``pg_ctl -m immediate``: no shutdown checkpoint, as a
    crash) while the devices of the last step report their installs, back 3 s later: the
    rollout completes, every device's install is recorded once, none updated twice."""
    store = RolloutStore.open(rollout_pg.url())
    n = 16
    plan = create_rollout(store, MODEL, fleet="pgkill", mqtt_url=rollout_broker.url,
                          devices=_ids(n), steps="25,100", health_window_s=2.0,
                          rules="failed>2%,silent>0")
    swarm = Swarm(rollout_broker.url, "pgkill", n, model=OLD_MODEL, rate_hz=6, ops=OPS).start()
    run = Run(store, rollout_broker.url, "pgkill").start(plan.id)
    try:
        canary = sum(1 for s in step_of(store, plan.id).values() if s == 0)
        # the first device of the last step installed: its offer was decided and stored,
        # the other results come while the database is away
        wait_until(lambda: sum(d.target.installs for d in swarm.devices) > canary, 40,
                   "a device of the last step installing")
        rollout_pg._run(str(rollout_pg.bindir / "pg_ctl"), "-D", str(rollout_pg.data),
                        "-m", "immediate", "-w", "stop")
        time.sleep(3.0)
        rollout_pg.start()
        result = run.join(90)
    finally:
        swarm.stop()
    assert result.state == RolloutState.COMPLETED, result.halt_reason
    assert store.counts(plan.id)[DeviceStep.HEALTHY] == n
    events = store.events(plan.id)
    installed = [e.device_id for e in events if e.kind == "installed"]
    assert sorted(installed) == sorted(_ids(n))  # each once, none lost
    assert [d.target.installs for d in swarm.devices] == [1] * n
    store.close()


def test_broker_killed_mid_rollout_the_rollout_finishes(rollout_broker: Any,
                                                        tmp_path: Path) -> None:
    """Mosquitto SIGKILLed (retained offers and statuses gone) as the last step's offers go
    out, back 1 s later: the updater offers again, the devices resume, the rollout
    completes with every device updated once."""
    store = _store(tmp_path)
    n = 12
    plan = create_rollout(store, MODEL, fleet="bk", mqtt_url=rollout_broker.url,
                          devices=_ids(n), steps="25,100", health_window_s=3.0,
                          rules="failed>2%,silent>0")
    swarm = Swarm(rollout_broker.url, "bk", n, model=OLD_MODEL, rate_hz=5, ops=OPS).start()
    run = Run(store, rollout_broker.url, "bk", stall_s=15.0).start(plan.id)
    try:
        wait_until(lambda: any(e.kind == "gate_passed" for e in run.events), 40, "a gate")
        rollout_broker.kill()
        time.sleep(1.0)
        rollout_broker.start()
        t0 = time.monotonic()
        result = run.join(60)
        TIMES["broker killed, completes"] = time.monotonic() - t0
    finally:
        swarm.stop()
    assert result.state == RolloutState.COMPLETED, result.halt_reason
    assert [d.target.installs for d in swarm.devices] == [1] * n
    new = model_facts(MODEL).sha256
    assert all(d.model_sha256 == new for d in swarm.devices)
