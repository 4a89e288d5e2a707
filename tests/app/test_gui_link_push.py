"""A board unplugged under the GUI's link: the state changes because the session pushed the
drop, not because anybody polled (the reader's poll is blinded here), and promptly."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from app.gui.connection import DeviceLink
from app.state.link import LinkState
from app.state.live_store import ChannelStore
from device_drivers.link.session import DeviceSession
from device_drivers.virtual.board import VirtualBoard


def test_an_unplug_reaches_the_link_by_push_and_it_comes_back(qtbot, tmp_path: Path,
                                                               monkeypatch) -> None:
    # the reader's watch loop asks session.connected: make it never see the drop, so only
    # the session's on_disconnect push can tell the link
    monkeypatch.setattr(DeviceSession, "connected", property(lambda self: True))
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb")
    board.start()
    link = DeviceLink(ChannelStore())
    seen: list[tuple[str, float]] = []
    link.state_changed.connect(lambda state, _d: seen.append((state, time.monotonic())))
    try:
        link.connect_port(board.port)
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=15000)
        links = board.counters.links
        t0: list[float] = []

        def pull() -> None:  # the board's disconnect fault: pull the cable, plug a new one
            t0.append(time.monotonic())
            board._unplug()

        puller = threading.Thread(target=pull)
        puller.start()
        qtbot.waitUntil(lambda: any(s == "lost" for s, _ in seen), timeout=5000)
        lost_at = next(t for s, t in seen if s == "lost")
        delay = lost_at - t0[0]
        print(f"pty closed -> GUI state 'lost' in {delay * 1000:.1f} ms")
        assert delay < 2.0
        assert link.outage and "lost" in link.model.machine.detail
        puller.join(10)
        assert board.counters.links > links  # plugged in again (a new pty)
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=15000)
        assert link.outage is None and link.port == board.port
        states = [s for s, _ in seen]
        assert states[:3] == ["connecting", "connected", "lost"]
        assert states.count("lost") <= 2  # one drop is reported once (a retry may add one)
    finally:
        assert link.shutdown(5000)
        board.stop()


def test_a_stopped_readers_late_signals_are_ignored(qtbot, tmp_path: Path) -> None:
    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb")
    board.start()
    link = DeviceLink(ChannelStore())
    try:
        link.connect_port(board.port)
        qtbot.waitUntil(lambda: link.state is LinkState.CONNECTED, timeout=15000)
        old = link._reader
        link.disconnect_port()
        assert link.state is LinkState.IDLE
        old.lost.emit("late news from a reader that was told to stop")  # queued meanwhile
        qtbot.wait(100)
        assert link.state is LinkState.IDLE and link.outage is None
    finally:
        assert link.shutdown(5000)
        board.stop()
