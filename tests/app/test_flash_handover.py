"""The flash handover without Qt: who owns the port while a board is flashed.

The link here is a plain object with the link's interface around the real state machine
(``LinkMachine``): the policy under test is ``app.state.flash_handover``, and the last test
runs its release/resume sequence on a real virtual board's port."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.state.flash_handover import FlashHandover, Mode, decide
from app.state.link import LinkEvent, LinkModel, LinkState
from device_drivers.link.session import DeviceSession
from device_drivers.virtual.board import VirtualBoard
from tinyops_base.errors import TinyOpsError

PORT = "/dev/ttyACM0"


class PlainLink:
    """The link's interface on a LinkModel; the port is a real session when one is given."""

    def __init__(self, port: str | None, state: LinkState, *, opener: Callable[[], Any] | None
                 = None) -> None:
        self.model = LinkModel(port=port)
        self.opener = opener
        self.session: Any = opener() if opener is not None and state is LinkState.CONNECTED \
            else (object() if state is LinkState.CONNECTED else None)
        path = {LinkState.IDLE: [], LinkState.CONNECTING: [LinkEvent.CONNECT],
                LinkState.CONNECTED: [LinkEvent.CONNECT, LinkEvent.OPENED],
                LinkState.LOST: [LinkEvent.CONNECT, LinkEvent.OPENED, LinkEvent.DROPPED],
                LinkState.FAILED: [LinkEvent.CONNECT, LinkEvent.OPEN_FAILED]}[state]
        for event in path:
            self.model.machine.fire(event)
        self.released = self.resumed = 0

    port = property(lambda self: self.model.port)
    state = property(lambda self: self.model.state)
    busy = property(lambda self: self.model.busy)

    def busy_with(self) -> str:
        return self.model.busy_with()

    def lend(self, job: Any) -> None:
        self.model.lend(job)

    def release(self) -> Callable[[float], bool]:
        self.released += 1
        self.model.machine.fire(LinkEvent.RELEASE)
        session, self.session = self.session, None
        closed = threading.Event()
        if hasattr(session, "close"):  # the link closes its port on its own thread
            threading.Thread(target=lambda: (session.close(), closed.set())).start()
        else:
            closed.set()
        return closed.wait

    def resume(self) -> None:
        self.resumed += 1
        self.model.machine.fire(LinkEvent.RESUME)
        if self.opener is not None:
            self.session = self.opener()
            self.model.machine.fire(LinkEvent.OPENED)


class Job:
    def __init__(self, name: str) -> None:
        self.name = name


def test_decisions() -> None:
    asked: list[int] = []

    def shares(answer: bool) -> Callable[[], bool]:
        return lambda: asked.append(1) or answer

    base = dict(port=PORT, link_port=PORT, busy=False, busy_with="")
    d = decide(**base, link_state=LinkState.CONNECTED, session_open=True, shares=shares(True))
    assert d.mode is Mode.SHARE
    d = decide(**base, link_state=LinkState.CONNECTED, session_open=True, shares=shares(False))
    assert d.mode is Mode.RELEASE
    for state in (LinkState.CONNECTING, LinkState.LOST):  # no session: the port is released
        assert decide(**base, link_state=state, session_open=False,
                      shares=shares(True)).mode is Mode.RELEASE
    d = decide(port=PORT, link_port=PORT, busy=True, busy_with="validate /dev/ttyACM0",
               link_state=LinkState.CONNECTED, session_open=True, shares=shares(False))
    assert d.mode is Mode.REFUSE and "validate" in d.reason and d.hint
    asked.clear()  # not the link's board, or a link that does not own its port: not asked
    assert decide(**{**base, "link_port": "/dev/ttyACM1"}, link_state=LinkState.CONNECTED,
                  session_open=True, shares=shares(True)).mode is Mode.NONE
    for state in (LinkState.IDLE, LinkState.FAILED, LinkState.RELEASED):
        assert decide(**base, link_state=state, session_open=False,
                      shares=shares(True)).mode is Mode.NONE
    assert not asked


def test_a_shared_flash_keeps_the_session_and_lends_the_port() -> None:
    link = PlainLink(PORT, LinkState.CONNECTED)
    session = link.session
    handover = FlashHandover(link, PORT, lambda: True)
    assert handover.mode is Mode.SHARE and handover.session is session
    assert handover.wait_port is None and link.released == 0
    job = Job("flash")
    handover.started(job)
    assert link.busy and link.model.holders == [job]
    handover.finished()
    assert link.resumed == 0 and link.state is LinkState.CONNECTED


def test_a_busy_port_is_refused_and_not_touched() -> None:
    link = PlainLink(PORT, LinkState.CONNECTED)
    link.lend(Job("validate /dev/ttyACM0"))
    handover = FlashHandover(link, PORT, lambda: False)
    assert handover.refused and "validate" in handover.decision.reason
    handover.started(Job("flash"))
    handover.finished()
    assert link.released == link.resumed == 0 and link.state is LinkState.CONNECTED
    assert [j.name for j in link.model.holders] == ["validate /dev/ttyACM0"]


def test_another_board_is_flashed_without_the_link() -> None:
    link = PlainLink("/dev/ttyACM1", LinkState.CONNECTED)
    handover = FlashHandover(link, PORT, lambda: pytest.fail("not asked"))
    handover.started(Job("flash"))
    handover.finished()
    assert handover.mode is Mode.NONE and not link.busy and link.released == 0


def test_release_flash_resume_on_a_real_port(tmp_path: Path) -> None:
    """The link lets go of a virtual board's port, the 'back end' opens it alone (an
    exclusive open that fails while the link holds it), and the link comes back once."""
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb")
    port = board.start()
    try:
        link = PlainLink(port, LinkState.CONNECTED,
                         opener=lambda: DeviceSession.open(port, timeout_s=5.0))
        with pytest.raises(TinyOpsError):  # while the link holds it, nobody else opens it
            DeviceSession.open(port, timeout_s=1.0)
        handover = FlashHandover(link, port, lambda: False)  # e.g. a bootloader back end
        assert handover.mode is Mode.RELEASE and link.state is LinkState.RELEASED
        assert handover.wait_port is not None and handover.wait_port(10.0)
        job = Job(f"flash {port}")
        handover.started(job)
        assert link.busy
        with DeviceSession.open(port, timeout_s=5.0) as backend:  # the port is free now
            assert backend.model_info() is not None
        handover.finished()
        handover.finished()  # a second end (finished and cancelled) resumes once
        assert link.resumed == 1 and link.state is LinkState.CONNECTED
        assert link.session.model_info() is not None
        link.session.close()
    finally:
        board.stop()
