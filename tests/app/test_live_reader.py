"""The reader that owns a board's session: a plain thread reporting through callbacks
(no Qt event loop needed), against a virtual board on TCP."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from app.board_identity import BoardIdentity
from app.gui.reader import SessionReader


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def board(tmp_path):
    from device_drivers.virtual.board import VirtualBoard

    vb = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb", tcp_port=_free_port(),
                      serial="VBREAD01")
    vb.start()
    yield vb
    vb.stop()


class Calls:
    def __init__(self) -> None:
        self.events: dict[str, threading.Event] = {}
        self.args: dict[str, tuple] = {}
        self.threads: dict[str, str] = {}

    def __call__(self, name: str):  # type: ignore[no-untyped-def]
        self.events[name] = threading.Event()

        def record(*args: object) -> None:
            self.args[name] = args
            self.threads[name] = threading.current_thread().name
            self.events[name].set()

        return record

    def wait(self, name: str, timeout: float = 20.0) -> tuple:
        assert self.events[name].wait(timeout), f"no {name} within {timeout} s"
        return self.args[name]


def _reader(port: str, calls: Calls, **kw) -> SessionReader:  # type: ignore[no-untyped-def]
    return SessionReader(port, on_opened=calls("opened"), on_failed=calls("failed"),
                         on_lost=calls("lost"), on_stranger=calls("stranger"),
                         on_finished=calls("finished"), **kw)


def test_opens_streams_and_reports_a_drop_without_polling(board) -> None:
    calls = Calls()
    reader = _reader(board.port, calls)
    reader.start()
    (info,) = calls.wait("opened")
    assert info.streaming and calls.threads["opened"] == f"reader:{board.port}"
    assert reader.identity is not None and reader.identity.hw_id == "VBREAD01"
    assert reader.session.connected and reader.is_running()
    board.stop()  # unplugged: the session pushes the drop, the reader reports it
    (reason,) = calls.wait("lost", timeout=10)
    assert reason
    calls.wait("finished")
    assert reader.wait(5) and not reader.is_running() and not reader.session.connected
    assert not calls.events["failed"].is_set()


def test_stop_closes_the_port_without_reporting_a_loss(board) -> None:
    calls = Calls()
    reader = _reader(board.port, calls)
    reader.start()
    calls.wait("opened")
    started = time.monotonic()
    reader.stop()  # never blocks
    assert time.monotonic() - started < 0.1
    assert reader.wait(10) and not reader.session.connected
    calls.wait("finished")
    assert not calls.events["lost"].is_set()  # a deliberate stop is no loss
    # the next reader of the port waits for this one, then opens it
    second = Calls()
    after = _reader(board.port, second, after=reader)
    after.start()
    second.wait("opened")
    after.stop()
    assert after.wait(10)


def test_another_board_is_reported_and_left_alone(board) -> None:
    calls = Calls()
    reader = _reader(board.port, calls, expect=BoardIdentity(serial="SOMEONE", hw_id="SOMEONE"))
    reader.start()
    found, link = calls.wait("stranger")
    assert found.hw_id == "VBREAD01" and not link.streaming
    calls.wait("finished")
    assert not calls.events["opened"].is_set() and not reader.session.connected


def test_a_port_that_cannot_be_opened_fails_with_a_message(tmp_path) -> None:
    calls = Calls()
    reader = _reader(f"socket://127.0.0.1:{_free_port()}", calls, open_timeout_s=0.5)
    reader.start()
    (err,) = calls.wait("failed")
    assert err.message
    calls.wait("finished")
    assert reader.session is None and reader.wait(1)
