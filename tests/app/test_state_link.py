"""The link state machine without Qt: its transitions, the ones it refuses, its policy, and a
real session pushing a disconnect into it (a virtual board whose pty is closed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from app.board_identity import BoardIdentity
from app.state.link import (
    TRANSITIONS,
    IllegalTransition,
    LinkEvent,
    LinkMachine,
    LinkModel,
    LinkState,
)
from device_drivers.link.session import DeviceSession
from device_drivers.virtual.board import VirtualBoard

S, E = LinkState, LinkEvent


def _at(state: LinkState) -> LinkMachine:
    """A machine brought to ``state`` through legal events only."""
    paths = {S.IDLE: [], S.CONNECTING: [E.CONNECT], S.CONNECTED: [E.CONNECT, E.OPENED],
             S.LOST: [E.CONNECT, E.OPENED, E.DROPPED], S.FAILED: [E.CONNECT, E.OPEN_FAILED],
             S.RELEASED: [E.CONNECT, E.OPENED, E.RELEASE]}
    m = LinkMachine()
    for event in paths[state]:
        m.fire(event)
    assert m.state is state
    return m


def test_a_connection_lives_its_life_through_the_table() -> None:
    seen: list[tuple[LinkState, str]] = []
    m = LinkMachine(lambda state, detail: seen.append((state, detail)))
    assert m.state is S.IDLE
    for event, want in [(E.CONNECT, S.CONNECTING), (E.OPENED, S.CONNECTED),
                        (E.DROPPED, S.LOST), (E.CONNECT, S.CONNECTING),
                        (E.OPENED, S.CONNECTED), (E.RELEASE, S.RELEASED),
                        (E.RESUME, S.CONNECTING), (E.OPEN_FAILED, S.FAILED),
                        (E.DISCONNECT, S.IDLE)]:
        assert m.fire(event, event.value) is want
    assert [s for s, _ in seen] == [S.CONNECTING, S.CONNECTED, S.LOST, S.CONNECTING,
                                    S.CONNECTED, S.RELEASED, S.CONNECTING, S.FAILED, S.IDLE]
    assert seen[2] == (S.LOST, "dropped")
    assert m.history[-1] == (S.FAILED, E.DISCONNECT, S.IDLE)
    assert S.CONNECTED == "connected" and str(S.LOST) == "lost"  # GUI code compares strings


@pytest.mark.parametrize("state", list(LinkState))
def test_every_event_a_state_does_not_list_is_refused_and_changes_nothing(state) -> None:
    for event in LinkEvent:
        m = _at(state)
        calls: list[object] = []
        m.on_change = lambda *a, c=calls: c.append(a)
        history = list(m.history)
        if (state, event) in TRANSITIONS:
            assert m.can(event)
            assert m.fire(event) is TRANSITIONS[state, event]
            assert calls
            continue
        assert not m.can(event)
        with pytest.raises(IllegalTransition) as caught:
            m.fire(event, "ignored")
        assert m.state is state and m.history == history and not calls
        assert caught.value.state is state and caught.value.event is event
        assert f"'{event.value}' while {state.value}" in str(caught.value)
        assert caught.value.hint and "accepts" in caught.value.hint


def test_the_refusals_that_matter() -> None:
    # a second drop, an "opened" after the user let go, resuming what was never released
    for state, event in [(S.LOST, E.DROPPED), (S.IDLE, E.OPENED), (S.CONNECTED, E.RESUME),
                         (S.IDLE, E.DROPPED), (S.RELEASED, E.OPENED), (S.FAILED, E.RELEASE),
                         (S.IDLE, E.DISCONNECT), (S.RELEASED, E.RELEASE)]:
        with pytest.raises(IllegalTransition):
            _at(state).fire(event)


def test_jobs_hold_the_port_and_the_last_deferred_action_runs_when_they_end() -> None:
    model = LinkModel()
    first, second = object(), object()
    assert model.when_idle(lambda: None)  # nobody holds it: run now
    model.lend(first)
    model.lend(second)
    assert model.busy
    ran: list[str] = []
    assert not model.when_idle(lambda: ran.append("a"))
    assert not model.when_idle(lambda: ran.append("b"))  # the last one wins
    assert model.returned(first) is None and model.busy
    action = model.returned(second)
    assert action is not None and not model.busy
    action()
    assert ran == ["b"] and model.pending is None


def test_a_board_that_appears_is_followed_only_if_it_is_ours() -> None:
    model = LinkModel(port="/dev/ttyACM0", serial="E66138")
    assert not model.follows("/dev/ttyACM0", "E66138")  # not away: nothing to follow
    model.outage = "unplugged"
    assert model.follows("/dev/ttyACM3", "E66138")  # same serial, new path
    assert not model.follows("/dev/ttyACM0", "OTHER")  # our path, another board
    model.identity = BoardIdentity(serial="SN9")  # the board said who it is: that wins
    assert model.follows("/dev/ttyACM7", "SN9") and not model.follows("/dev/x", "E66138")
    model.identity, model.serial = None, None
    assert model.follows("/dev/ttyACM0", None) and not model.follows("/dev/ttyACM1", None)
    model.lend(object())  # a job holds the port: never switch under it
    assert not model.follows("/dev/ttyACM0", None)


def test_labels_name_the_board_not_the_path() -> None:
    model = LinkModel(port="/dev/ttyACM0")
    assert model.board_label() == "the board at /dev/ttyACM0"
    model.identity = BoardIdentity(serial="E66138", board="nano33ble")
    assert "E66138" in model.board_label() and "/dev" not in model.board_label()
    detail = model.lost_detail("read failed from /dev/ttyACM0")
    assert detail.startswith("lost nano33ble") and "/dev/ttyACM0" not in detail


def test_a_closed_pty_is_pushed_into_the_machine_without_a_poll(tmp_path: Path) -> None:
    """The session's I/O thread reports the drop itself; nothing here looks at ``connected``."""
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb")
    port = board.start()
    model = LinkModel(port=port)
    dropped = threading.Event()
    at: list[float] = []

    def on_disconnect(reason: str) -> None:
        model.outage = reason
        model.machine.fire(E.DROPPED, model.lost_detail(reason))
        at.append(time.monotonic())
        dropped.set()

    try:
        model.machine.fire(E.CONNECT)
        with DeviceSession.open(port, timeout_s=5.0) as session:
            assert session.model_info() is not None
            model.machine.fire(E.OPENED)
            session.on_disconnect = on_disconnect
            with board._write_lock:  # the board's own cable pull (its disconnect fault)
                t0 = time.monotonic()
                board._link.unplug()  # closes the pty
            assert dropped.wait(10), "the session never reported the closed pty"
            assert model.state is S.LOST and model.outage
            delay = at[0] - t0
            print(f"pty closed -> DROPPED pushed in {delay * 1000:.1f} ms")
            assert delay < 2.0
            with pytest.raises(IllegalTransition):  # a second report changes nothing
                model.machine.fire(E.DROPPED)
    finally:
        board.stop()


def test_after_a_failure_the_link_retries_or_says_so() -> None:
    desk = LinkModel(port="/dev/ttyACM0")
    then = desk.open_failed("cannot open /dev/ttyACM0: busy", auto_reconnect=False,
                            retry_ms=1000)
    assert then.event is E.OPEN_FAILED and then.retry_ms is None and then.tell
    kiosk = desk.open_failed("cannot open /dev/ttyACM0: busy", auto_reconnect=True,
                             retry_ms=1000)
    assert kiosk.event is E.RETRY and kiosk.retry_ms == 1000 and not kiosk.tell
    drop = desk.dropped("read failed", auto_reconnect=False)
    assert drop.event is E.DROPPED and drop.tell and drop.retry_ms and desk.outage
    away = desk.open_failed("no such file", auto_reconnect=False, retry_ms=1000)
    assert away.event is E.RETRY and away.retry_ms == drop.retry_ms and not away.tell
    assert "is away" in away.detail  # a board that went away is waited for, never failed
    assert not LinkModel(port="/dev/x").dropped("gone", auto_reconnect=True).tell
