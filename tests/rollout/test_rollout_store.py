"""RolloutStore on both back ends (SQLite records file, real PostgreSQL): plans, devices,
events, requests, the holder lock, and a PostgreSQL restart under a writer."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from device_drivers.errors import InputError
from fleet_ops.records.uuid7 import uuid7
from fleet_ops.rollout.plan import (
    DeviceEntry,
    DeviceStep,
    Event,
    Rollout,
    RolloutState,
    assign_steps,
    parse_steps,
)
from fleet_ops.rollout.store import RolloutHeld, RolloutStore


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        s = RolloutStore.open("", path=tmp_path / "records.sqlite")
    else:
        pg = request.getfixturevalue("rollout_pg")
        s = RolloutStore.open(pg.url())
    yield s
    s.close()


def _plan(**kw: Any) -> Rollout:
    base: dict[str, Any] = dict(id=str(uuid7()), model_name="kws.tflite", model_sha256="ab" * 32,
                                model_size=1234, fleet="f1", mqtt_url="mqtt://127.0.0.1:1883")
    base.update(kw)
    return Rollout(**base)


def test_steps_are_stable_and_cover_every_device() -> None:
    devices = [f"d{i:03d}" for i in range(50)]
    steps = parse_steps("5,25,50")
    assert steps == [5, 25, 50, 100]
    a = assign_steps("r1", devices, steps)
    assert a == assign_steps("r1", list(reversed(devices)), steps)
    per = [sum(1 for v in a.values() if v == i) for i in range(4)]
    assert per == [3, 10, 12, 25] and sum(per) == 50
    assert assign_steps("r2", devices, steps) != a  # another rollout, another canary
    with pytest.raises(ValueError):
        parse_steps("50,5")
    with pytest.raises(ValueError):
        parse_steps("5,x")


def test_plan_devices_events_round_trip(store: RolloutStore) -> None:
    plan = _plan(steps=[10, 100], rules=["drift>0.2"], cohort="lab")
    ids = assign_steps(plan.id, [f"d{i}" for i in range(20)], plan.steps)
    store.create(plan, ids)
    got = store.get(plan.id)
    assert got.to_dict() | {"updated": None} == plan.to_dict() | {"updated": None}
    assert store.get(plan.id[:13]).id == plan.id  # a unique prefix works
    with pytest.raises(InputError):
        store.get("nope")
    assert [r.id for r in store.list()] == [plan.id]
    entries = store.devices(plan.id)
    assert {e.device_id: e.step_index for e in entries} == ids

    e = entries[0]
    e.state, e.attempts, e.bytes_sent, e.previous_sha256 = DeviceStep.INSTALLED, 1, 1300, "cd" * 32
    store.update_device(e, Event(plan.id, "installed", "reported", e.device_id, {"bytes": 1300}))
    again = next(x for x in store.devices(plan.id) if x.device_id == e.device_id)
    assert again.to_dict() == e.to_dict()
    assert store.counts(plan.id)[DeviceStep.INSTALLED] == 1
    assert store.counts(plan.id)[DeviceStep.PENDING] == 19

    store.set_state(plan.id, RolloutState.HALTED, "drift>0.2 on d1", {"drift": 0.4},
                    kind="halted", halt_reason="drift>0.2", step_index=1)
    got = store.get(plan.id)
    assert (got.state, got.step_index, got.halt_reason) == (RolloutState.HALTED, 1, "drift>0.2")
    kinds = [ev.kind for ev in store.events(plan.id)]
    assert kinds == ["created", "installed", "halted"]
    last = store.events(plan.id, limit=1)
    assert len(last) == 1 and last[0].figures == {"drift": 0.4}

    store.request(plan.id, "pause")
    assert store.get(plan.id).requested == "pause"
    with pytest.raises(InputError):
        store.request(plan.id, "explode")
    store.set_state(plan.id, RolloutState.PAUSED, "asked", clear_request=True)
    assert store.get(plan.id).requested is None


def test_second_holder_is_refused_and_named(store: RolloutStore) -> None:
    plan = _plan()
    store.create(plan, ["d1"])
    with store.hold(plan.id, "hostA:1 since then") as hold:
        hold.check()
        other = RolloutStore(store.db.__class__(store.db.target))
        try:
            with pytest.raises(RolloutHeld) as info, other.hold(plan.id, "hostB:2"):
                pass
            assert "hostA:1" in str(info.value)
        finally:
            other.close()
        assert store.holder(plan.id) == "hostA:1 since then"
    assert store.holder(plan.id) is None
    with store.hold(plan.id, "hostB:2"):  # released: the next one gets it
        pass


def test_dead_holder_lets_go(store: RolloutStore) -> None:
    """A holder killed without a word: PostgreSQL drops its session lock; SQLite's lease
    runs out (shortened here)."""

    plan = _plan()
    store.create(plan, ["d1"])
    code = ("import sys, os, signal; from fleet_ops.rollout.store import RolloutStore\n"
            "import fleet_ops.rollout.db as m; m.LEASE_S = 1.0\n"
            f"s = RolloutStore.open({store.db.target!r} if {store.db.pg} else '', "
            f"path={store.db.target!r})\n"
            f"h = s.hold({plan.id!r}, 'victim').__enter__(); print('held', flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert "held" in out.stdout, out.stderr
    deadline = threading.Event()
    for _ in range(40):
        try:
            with store.hold(plan.id, "survivor"):
                break
        except RolloutHeld as exc:
            assert "victim" in str(exc) or "another" in str(exc)
            deadline.wait(0.25)
    else:
        pytest.fail("the dead holder's lock never went")


def test_postgres_restart_loses_no_write(rollout_pg: Any) -> None:
    """PostgreSQL stopped while a writer writes: every write lands once it is back."""
    store = RolloutStore.open(rollout_pg.url())
    plan = _plan()
    store.create(plan, [f"d{i}" for i in range(10)])
    done: list[int] = []

    def writer() -> None:
        for i in range(10):
            store.update_device(DeviceEntry(plan.id, f"d{i}", 0, DeviceStep.INSTALLED,
                                            attempts=1, bytes_sent=i),
                                Event(plan.id, "installed", "", f"d{i}"))
            done.append(i)
            if i == 3:
                stopped.wait(30)

    stopped = threading.Event()
    t = threading.Thread(target=writer)
    t.start()
    while len(done) < 4:
        t.join(0.05)
    rollout_pg.stop()
    stopped.set()
    rollout_pg.start()
    t.join(120)
    assert not t.is_alive() and done == list(range(10))
    assert store.counts(plan.id)[DeviceStep.INSTALLED] == 10
    assert sum(1 for e in store.events(plan.id) if e.kind == "installed") == 10
    store.close()
