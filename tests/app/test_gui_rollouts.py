"""The Fleet page's rollout panel on a real rollout store (the records SQLite file under this
test's TINYOPS_HOME): what it shows, read off the GUI thread; the confirmations naming how many
devices an action touches; the actions run as ``tinyops rollout …`` child processes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget

from app.gui.pages.fleet_rollouts import RolloutPanel
from app.gui.pages.rollout_start import StartDialog
from fleet_ops.rollout.plan import (
    DeviceEntry,
    DeviceStep,
    Event,
    Rollout,
    RolloutState,
    assign_steps,
)
from fleet_ops.rollout.store import RolloutStore

MODEL = Path(__file__).resolve().parents[2] / "resources/examples/vibration/model_int8.tflite"


@pytest.fixture
def store(tinyops_home: Path) -> Iterator[RolloutStore]:
    s = RolloutStore.open("")  # the records file under TINYOPS_HOME: what the GUI opens
    yield s
    s.close()


def halted_rollout(store: RolloutStore, n: int = 40) -> Rollout:
    """A rollout halted at its second step: step 0 healthy, step 1 partly installed, one
    device failed, the drift rule breached."""
    r = Rollout(id=str(uuid.uuid4()), model_name="kws-v2.tflite", model_sha256="ab" * 32,
                model_size=20480, fleet="plant", mqtt_url="mqtt://127.0.0.1:1883",
                steps=[5, 25, 50, 100], health_window_s=10.0, rules=["drift>0.2"])
    steps = assign_steps(r.id, [f"dev-{i:02d}" for i in range(n)], r.steps)
    store.create(r, steps)
    step1 = sorted(d for d, s in steps.items() if s == 1)
    for d, s in steps.items():
        if s == 0:
            store.update_device(DeviceEntry(r.id, d, 0, DeviceStep.HEALTHY, 1, 20600))
    for d in step1[:-1]:
        store.update_device(DeviceEntry(r.id, d, 1, DeviceStep.INSTALLED, 1, 20600))
    store.update_device(DeviceEntry(r.id, step1[-1], 1, DeviceStep.FAILED, 2, 41200,
                                    reason="sha256 mismatch twice"))
    store.add_event(Event(r.id, "gate_passed", "step 1 healthy",
                          figures={"drift": {"took": 0.02, "rest": 0.03}}))
    store.set_state(r.id, RolloutState.HALTED, "drift>0.2 breached",
                    {"drift": {"took": 0.31, "rest": 0.03},
                     "breaches": [{"rule": "drift>0.2", "metric": "drift"}]},
                    kind="halted", step_index=1,
                    halt_reason="drift>0.2 on dev-07, dev-19: 0.31 vs 0.03")
    return r


class Win(QWidget):
    """A window with the main window's ``ask`` (a modal dialog in a test hangs forever)."""

    def __init__(self, answer: bool, broker: str = "mqtt://127.0.0.1:1883") -> None:
        super().__init__()
        self.answer, self.broker = answer, broker
        self.asked: list[tuple[str, str]] = []
        self.errors: list[Any] = []
        self.ctx = self  # the page's context: report_error
        self.panel = RolloutPanel(self, self)
        QVBoxLayout(self).addWidget(self.panel)

    def ask(self, title: str, text: str) -> bool:
        self.asked.append((title, text))
        return self.answer

    def report_error(self, err: Any) -> None:
        self.errors.append(err)

    def fleet_name(self) -> str:
        return "plant"

    def broker_url(self) -> str:
        return self.broker


@pytest.fixture
def make_win(qtbot) -> Iterator[Any]:
    made: list[Win] = []

    def make(answer: bool = True, broker: str = "mqtt://127.0.0.1:1883") -> Win:
        made.append(w := Win(answer, broker))
        return w

    yield make
    for w in made:
        w.panel.shutdown()
        for _what, child, _log in w.panel.children:
            if child.poll() is None:  # a failed test: the orchestrator must not outlive it
                child.terminate()
            child.wait(30)
        w.close()
        w.deleteLater()


def shown(qtbot, panel: RolloutPanel, check) -> None:  # type: ignore[no-untyped-def]
    panel.reader.refresh()
    qtbot.waitUntil(lambda: check(panel.snap), timeout=15000)


def test_panel_shows_steps_counts_gate_and_why_it_halted(qtbot, store: RolloutStore,
                                                         make_win) -> None:
    r = halted_rollout(store)
    p = make_win().panel
    shown(qtbot, p, lambda s: bool(s.rollouts))
    assert p.reader.thread_ident not in (None, threading.get_ident())  # off the GUI thread
    cells = [p.table.item(0, c).text() for c in range(p.table.columnCount())]
    assert cells[:5] == [r.id[:8], "kws-v2.tflite", "halted", "2 of 4 (25 %)", "9 of 40 updated"]
    assert p.halt.text() == "drift>0.2 on dev-07, dev-19: 0.31 vs 0.03"
    assert p.counts.text() == "Devices: 30 pending, 7 installed, 2 healthy, 1 failed"
    assert p.gate.text().startswith("Gate: halted at ")
    assert [p.figures.item(0, c).text() for c in range(3)] == ["drift", "0.31", "0.03"]
    assert p.figures.item(0, 1).foreground().color().name() == "#ff0000"  # the breach in red
    assert "halted: drift>0.2 breached" in p.events.item(0).text()  # newest first
    assert p.events.item(p.events.count() - 1).text().endswith("created: 40 devices")
    enabled = {a for a, b in p.buttons.items() if b.isEnabled()}
    assert enabled == {"resume", "abort", "rollback"}
    assert "no orchestrator" not in p.title.text()  # halted: nobody needs to run it


def test_another_clients_change_shows_and_changes_the_actions(qtbot, store: RolloutStore,
                                                              make_win) -> None:
    r = halted_rollout(store)
    p = make_win().panel
    shown(qtbot, p, lambda s: bool(s.rollouts))
    store.set_state(r.id, RolloutState.RUNNING, "resumed by the CLI", kind="resumed")
    shown(qtbot, p, lambda s: s.rollout(r.id).state == RolloutState.RUNNING)
    assert p.halt.text() == "" and "running" in p.title.text()
    assert "no orchestrator runs it now" in p.title.text()
    assert {a for a, b in p.buttons.items() if b.isEnabled()} == {"pause", "abort", "rollback"}
    with store.hold(r.id, "station-3:4242"):
        shown(qtbot, p, lambda s: s.holder == "station-3:4242")
        assert "orchestrator: station-3:4242" in p.title.text()


def test_declined_action_touches_nothing(qtbot, store: RolloutStore, make_win) -> None:
    r = halted_rollout(store)
    win = make_win(answer=False)
    p = win.panel
    shown(qtbot, p, lambda s: bool(s.rollouts))
    assert p.act("rollback") is False and p.act("abort") is False
    (t1, q1), (t2, q2) = win.asked
    assert t1 == "Roll back rollout" and "9 devices that took the model" in q1
    assert t2 == "Abort rollout" and "30 devices not yet updated will never" in q2
    assert p.children == [] and store.get(r.id).requested is None
    assert p.act("pause") is False and len(win.asked) == 2  # not allowed when halted: no question


def test_a_failing_child_is_reported_with_its_reason(qtbot, store: RolloutStore,
                                                     make_win) -> None:
    """``tinyops rollout resume`` really run, on a rollout whose model file is gone: the CLI's
    error (its ``--json`` object) reaches the note and the window's error report."""
    r = halted_rollout(store)  # stored without a model file
    win = make_win()
    p = win.panel
    shown(qtbot, p, lambda s: bool(s.rollouts))
    assert p.act("resume") is True
    ((what, child, _log),) = p.children
    assert what == "resume"  # the page's broker is the rollout's: passed on (with its password)
    assert child.args[-5:] == ["resume", r.id, "--mqtt", "mqtt://127.0.0.1:1883", "--json"]
    qtbot.waitUntil(lambda: not p.children, timeout=60000)
    assert p.note.text().startswith("resume failed: ")
    (err,) = win.errors
    assert err.message.startswith("rollout resume failed: ") and err.hint
    assert "model" in err.message  # the CLI's own reason: the model file cannot be read
    assert store.get(r.id).state == RolloutState.HALTED  # nothing changed


def test_child_outcome_reads_the_last_json_object() -> None:
    from app.gui.pages.rollout_start import child_outcome

    assert child_outcome('noise\n{"ok": true, "state": "completed"}\n', 0)["state"] == \
        "completed"
    said = child_outcome('{"ok": false, "error": "no rollout \'x\'", "hint": "list"}\n', 1)
    assert said == {"ok": False, "error": "no rollout 'x'", "hint": "list"}
    assert child_outcome("Traceback …\nKeyError: 'x'\n", 1) == {"error": "KeyError: 'x'"}
    assert child_outcome("", 0) == {}
    assert child_outcome("", 2) == {"error": "exit status 2"}


def test_unreadable_store_says_so_and_recovers(qtbot, tinyops_home: Path, make_win) -> None:
    from tinyops_base.errors import TinyOpsError

    tries = []

    def opener() -> RolloutStore:
        tries.append(1)
        if len(tries) == 1:
            raise TinyOpsError("the records server is unreachable")
        return RolloutStore.open("")

    win = make_win()
    p = win.panel
    p.reader.stop()  # the window's own reader: replaced by one with this opener
    p2 = RolloutPanel(win, None, opener=opener)
    try:
        qtbot.waitUntil(lambda: "unreachable" in p2.note.text(), timeout=15000)
        assert p2.note.text() == "cannot read the rollouts: the records server is unreachable"
        p2.reader.refresh()
        qtbot.waitUntil(lambda: len(tries) >= 2 and p2.note.text() == "", timeout=15000)
        assert p2.title.text().startswith("no rollout yet")
    finally:
        p2.shutdown()
        p2.deleteLater()


def test_start_dialog_checks_its_fields(qtbot, tinyops_home: Path) -> None:
    d = StartDialog("plant", "mqtt://127.0.0.1:1883")
    qtbot.addWidget(d)
    d.model.setText(str(MODEL))
    d.steps.setText("10,100")
    d.window_s.setValue(10)
    d.devices.setText("dev-1, dev-2")
    assert d.command() == ["create", str(MODEL), "--fleet", "plant", "--mqtt",
                           "mqtt://127.0.0.1:1883", "--steps", "10,100", "--health-window", "10",
                           "--halt-on", d.rules.text(), "--devices", "dev-1,dev-2"]
    d.steps.setText("50,10")
    d._ok()
    assert "rising percentages" in d.error.text() and d.result() == 0  # stays open
    d.steps.setText("100")
    d.model.setText(str(tinyops_home / "nope.tflite"))
    with pytest.raises(ValueError, match=r"nope\.tflite not found"):
        d.command()


def test_fleet_page_has_the_rollouts_tab_reading_only_when_shown(qtbot,
                                                                 store: RolloutStore) -> None:
    from app.gui.pages.fleet_page import FleetPage

    halted_rollout(store)
    page = FleetPage(None)
    try:
        page.show()
        assert page.views.tabText(1) == "Rollouts" and not page.rollouts.reader.running
        page.views.setCurrentIndex(1)
        qtbot.waitUntil(lambda: page.rollouts.table.rowCount() == 1, timeout=15000)
        page.fleet.setText("plant")
        assert page.fleet_name() == "plant" and page.broker_url() == page.broker.text()
    finally:
        page.shutdown()
        page.close()
        page.deleteLater()


def test_start_pause_resume_and_roll_back_from_the_panel(qtbot, store: RolloutStore,
                                                        make_win) -> None:
    """The whole path on real pieces: a Mosquitto, 6 swarm devices, the panel starting
    ``tinyops rollout create`` in a child process, then pausing, resuming and rolling back
    through ``tinyops rollout …`` children, each confirmed with the device count."""
    import hashlib
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
    from fleet_servers import running_mosquitto

    from fleet_ops.rollout.preflight import model_facts
    from fleet_ops.rollout.swarm import Swarm, default_ops

    old = b"the model before" * 64
    ops = sorted(set(default_ops()) | model_facts(MODEL).ops)
    with running_mosquitto() as broker:
        swarm = Swarm(broker.url, "plant", 6, model=old, rate_hz=8, ops=ops).start()
        try:
            win = make_win(answer=True, broker=broker.url)
            p = win.panel
            d = StartDialog("plant", broker.url)
            qtbot.addWidget(d)
            d.model.setText(str(MODEL))
            d.steps.setText("34,67,100")
            d.window_s.setValue(4)
            d.rules.setText("failed>2%")
            assert p.start_from(d) is True
            assert "to every device the fleet reports of fleet plant" in win.asked[-1][1]
            shown(qtbot, p, lambda s: bool(s.rollouts) and s.holder is not None
                  and s.rollouts[0].state == RolloutState.RUNNING)
            rid = p.snap.rollouts[0].id
            assert p.act("pause") is True
            title, text = win.asked[-1]
            assert title == "Pause rollout" and "devices not yet updated will wait" in text
            qtbot.waitUntil(lambda: p.snap.rollout(rid) is not None and
                            p.snap.rollout(rid).state == RolloutState.PAUSED, timeout=30000)
            assert {a for a, b in p.buttons.items() if b.isEnabled()} == {
                "resume", "abort", "rollback"}
            assert p.act("resume") is True
            qtbot.waitUntil(lambda: p.snap.rollout(rid).state == RolloutState.COMPLETED,
                            timeout=90000)
            new = hashlib.sha256(MODEL.read_bytes()).hexdigest()
            assert all(dev.model_sha256 == new for dev in swarm.devices)
            assert p.counts.text() == "Devices: 6 healthy"
            assert {a for a, b in p.buttons.items() if b.isEnabled()} == {"rollback"}
            assert p.act("rollback") is True
            assert "6 devices that took the model return" in win.asked[-1][1]
            qtbot.waitUntil(lambda: p.snap.rollout(rid).state == RolloutState.ROLLED_BACK,
                            timeout=60000)
            assert all(dev.model_sha256 == hashlib.sha256(old).hexdigest()
                       for dev in swarm.devices)
            qtbot.waitUntil(lambda: not p.children, timeout=30000)  # every child ended
            assert "failed" not in p.note.text()
        finally:
            swarm.stop()
