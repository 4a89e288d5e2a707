"""The rollout panel's Qt-free model: rows, counts, gate figures, halt reason, allowed actions
and the confirmation naming how many devices an action touches."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest

from app.state import rollout_view as rv


def rollout(state: str = "running", step_index: int = 1, **kw: Any) -> Any:
    base = dict(id="0190c0de-aaaa-7bbb-8ccc-123456789abc", model_name="kws-v2.tflite",
                model_sha256="ab" * 32, model_size=20480, fleet="plant", mqtt_url="mqtt://b",
                steps=[5, 25, 50, 100], health_window_s=10.0, rules=["drift>0.2"],
                devices=None, cohort=None, state=state, step_index=step_index,
                created=datetime(2026, 12, 7, 5, 0, tzinfo=timezone.utc),
                updated=datetime(2026, 12, 7, 5, 1, 2, tzinfo=timezone.utc),
                halt_reason=None, requested=None)
    base.update(kw)
    return SimpleNamespace(**base)


COUNTS = {"pending": 30, "offered": 2, "transferring": 3, "installed": 4, "healthy": 8,
          "failed": 1, "skipped": 2}


def test_rows_show_step_of_steps_and_devices_updated() -> None:
    r = rollout()
    snap = rv.Snapshot([r], {r.id: rv.normalise_counts(COUNTS)}, r.id, [])
    (row,) = rv.rows(snap)
    assert row.cells() == ("0190c0de", "kws-v2.tflite", "running", "2 of 4 (25 %)",
                           "12 of 50 updated", "2026-12-07 05:01:02")
    assert rv.step_text(rollout(step_index=9)) == "4 of 4 (100 %)"  # clamped, never an index error
    assert rv.count_items(COUNTS)[:3] == [("pending", 30), ("offered", 2), ("transferring", 3)]
    assert ("rolled back", 0) not in rv.count_items(COUNTS)  # empty states left out


def test_counts_accept_enum_keys() -> None:
    from enum import Enum

    class Step(str, Enum):
        PENDING = "pending"
        HEALTHY = "healthy"

    c = rv.normalise_counts({Step.PENDING: 3, Step.HEALTHY: 2})
    assert c["pending"] == 3 and c["healthy"] == 2 and sum(c.values()) == 5


@pytest.mark.parametrize(("state", "actions"), [
    ("created", ("resume", "abort")),
    ("running", ("pause", "abort", "rollback")),
    ("paused", ("resume", "abort", "rollback")),
    ("halted", ("resume", "abort", "rollback")),
    ("completed", ("rollback",)),
    ("aborted", ("rollback",)),
    ("rolling_back", ()),
    ("rolled_back", ()),
])
def test_allowed_actions_follow_the_state(state: str, actions: tuple[str, ...]) -> None:
    assert rv.allowed(rollout(state)) == actions


def test_an_action_asked_already_is_not_offered_twice() -> None:
    assert rv.allowed(rollout("running", requested="pause")) == ("abort", "rollback")
    assert rv.allowed(None) == ()


def test_confirmation_names_how_many_devices_each_action_touches() -> None:
    r = rollout("halted", halt_reason="drift>0.2 on dev-3, dev-9: 0.31 vs 0.05")
    assert rv.touched("pause", COUNTS) == 35 and rv.touched("abort", COUNTS) == 35
    assert rv.touched("resume", COUNTS) == 35 and rv.touched("rollback", COUNTS) == 12
    title, text = rv.confirmation("rollback", r, COUNTS)
    assert title == "Roll back rollout" and "12 devices that took the model" in text
    assert "kws-v2.tflite (0190c0de, fleet plant)" in text
    assert "35 devices not yet updated will never" in rv.confirmation("abort", r, COUNTS)[1]
    assert "1 device not yet" in rv.confirmation("pause", r, {"pending": 1})[1]
    assert "step 2 of 4 (25 %)" in rv.confirmation("resume", r, COUNTS)[1]
    with pytest.raises(ValueError, match="unknown rollout action"):
        rv.touched("explode", COUNTS)


def test_halt_reason_only_when_it_stopped() -> None:
    why = "silent>0: dev-7 not heard for 10 s"
    assert rv.halt_reason(rollout("halted", halt_reason=why)) == why
    assert rv.halt_reason(rollout("running", halt_reason=why)) == ""


def ev(kind: str, why: str = "", figures: dict[str, Any] | None = None,
       minute: int = 0, device_id: str | None = None) -> Any:
    return SimpleNamespace(rollout_id="r", time=datetime(2026, 12, 7, 5, minute, 0), kind=kind,
                           device_id=device_id, why=why, figures=figures or {})


def test_gate_figures_from_the_newest_gate_decision() -> None:
    events = [  # newest first
        ev("sent", device_id="dev-1", minute=9),
        ev("halted", "drift>0.2 breached", {"drift": {"took": 0.31, "rest": 0.05},
                                             "latency_p95": {"took": 2100.0, "rest": 1900.0},
                                             "breaches": [{"rule": "drift>0.2",
                                                           "metric": "drift"}]}, minute=8),
        ev("gate_passed", "", {"drift": {"took": 0.01, "rest": 0.02}}, minute=3),
    ]
    head, figs = rv.gate_figures(events)
    assert head == "halted at 2026-12-07 05:08:00"  # the why is the halt reason, shown apart
    assert rv.gate_figures(events[2:])[0] == "passed at 2026-12-07 05:03:00"
    assert [(f.name, f.took, f.rest, f.breached) for f in figs] == [
        ("drift", "0.31", "0.05", True), ("latency_p95", "2100", "1900", False)]
    assert rv.gate_figures([ev("created")]) == ("no gate decided yet", [])
    assert rv.event_line(events[0]) == "05:09:00 sent dev-1"


def test_steps_are_checked() -> None:
    assert rv.parse_steps("5, 25,50,100") == [5, 25, 50, 100]
    for bad in ("", "5,25", "50,25,100", "0,100", "a,100", "5,5,100"):
        with pytest.raises(ValueError, match="steps"):
            rv.parse_steps(bad)


def test_create_confirmation_names_the_fleet_and_first_step() -> None:
    text = rv.create_confirmation("kws.tflite", "plant", 40, [5, 25, 100])
    assert "40 devices of fleet plant" in text and "2 devices in the first step" in text
    assert "every device the fleet reports" in rv.create_confirmation("m", "f", None, [100])


def test_gate_figures_by_group_are_shown_by_metric() -> None:
    e = ev("halted", "latency", {"step": 1, "per_device": {"d1": [0.1, 0.9, 2900, False]},
                                 "took": {"drift": 0.05, "latency_p95": 2900.0},
                                 "rest": {"drift": 0.04, "latency_p95": 1900.0},
                                 "breaches": [{"rule": "latency_p95>+20%",
                                               "metric": "latency_p95"}], "devices": 12})
    _, figs = rv.gate_figures([e])
    assert [(f.name, f.took, f.rest, f.breached) for f in figs] == [
        ("devices", "12", "", False), ("drift", "0.05", "0.04", False),
        ("latency_p95", "2900", "1900", True)]


def test_notable_events_leave_out_routine_device_lines() -> None:
    events = [ev("installed", device_id="d1", minute=5), ev("failed", "twice", device_id="d2",
                                                            minute=4),
              ev("gate_passed", minute=3), ev("sent", device_id="d3", minute=2)]
    assert [e.kind for e in rv.notable(events)] == ["failed", "gate_passed"]
    many = [ev("step_started", minute=m % 60) for m in range(100)]
    assert len(rv.notable(many)) == rv.EVENTS_SHOWN


def test_snapshot_from_a_real_store(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """load_snapshot on the real RolloutStore (SQLite): rows, counts, holder, events newest
    first, the selection kept or moved to the newest rollout."""
    from fleet_ops.rollout.plan import DeviceEntry, DeviceStep, Rollout, RolloutState
    from fleet_ops.rollout.store import RolloutStore

    store = RolloutStore.open("", path=tmp_path / "r.db")
    try:
        ids = []
        for name in ("a.tflite", "b.tflite"):
            r = Rollout(id=f"0190-{name}", model_name=name, model_sha256="cd" * 32,
                        model_size=100, fleet="f", mqtt_url="mqtt://h", steps=[50, 100])
            store.create(r, {"d1": 0, "d2": 1})
            ids.append(r.id)
        store.update_device(DeviceEntry(ids[0], "d1", 0, DeviceStep.INSTALLED, 1, 101))
        store.set_state(ids[0], RolloutState.RUNNING, "step 1/2", kind="step_started",
                        step_index=0)
        snap = rv.load_snapshot(store, ids[0])
        assert snap.selected == ids[0] and len(snap.rollouts) == 2
        assert snap.counts[ids[0]]["installed"] == 1 and snap.counts[ids[0]]["pending"] == 1
        assert [e.kind for e in snap.events] == ["step_started", "created"]
        assert snap.holder is None
        row = next(x for x in rv.rows(snap) if x.id == ids[0])
        assert (row.state, row.step, row.devices) == ("running", "1 of 2 (50 %)",
                                                      "1 of 2 updated")
        with store.hold(ids[0], "me:1"):
            assert rv.load_snapshot(store, ids[0]).holder == "me:1"
        gone = rv.load_snapshot(store, "no-such-id")  # e.g. deleted: the newest instead
        assert gone.selected == store.list()[0].id
    finally:
        store.close()
