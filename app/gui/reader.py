"""The thread that owns one board's ``DeviceSession`` for the GUI (see ``connection.py``).

It opens the port, asks what the board is (model info) and, when it must be a particular
board (a reconnect), checks that it is before it touches it: another board that answers
is reported (``stranger``) and left alone, never streamed from.

Two parts, the app's thread style for long-lived streams: :class:`SessionReader` is plain
Python (a ``threading.Thread``, callbacks, no Qt); :class:`ReaderThread` is its thin Qt face,
which turns the callbacks into signals emitted on the GUI thread (the reader's thread only
posts them there, so a face deleted meanwhile is never touched from it). A drop is pushed
by the session (``DeviceSession.on_disconnect``), not polled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt, Signal

from app.board_identity import BoardIdentity, same_board
from app.gui.link_info import LinkInfo
from app.gui.workers import describe_error

log = logging.getLogger(__name__)

STREAM_OFF_TIMEOUT_S = 0.3  # the reader's goodbye: never worth blocking on
HANDOVER_TIMEOUT_MS = 8000  # a new reader waits this long for the old one to close


def _ignore(*_: object) -> None:
    pass


class SessionReader:
    """Owns one ``DeviceSession`` for its lifetime, on its own thread. Stop with :meth:`stop`
    (never blocks); :meth:`wait` joins. ``after``: a reader that must have closed the port
    before this one opens it. The ``on_*`` callbacks run on the reader's thread."""

    def __init__(self, port: str, *, stream: bool = True, period_ms: int = 50,
                 open_timeout_s: float = 2.0, after: SessionReader | None = None,
                 expect: BoardIdentity | None = None, serial: str | None = None,
                 on_opened: Callable[[LinkInfo], None] = _ignore,
                 on_failed: Callable[[Any], None] = _ignore,
                 on_lost: Callable[[str], None] = _ignore,
                 on_stranger: Callable[[BoardIdentity, LinkInfo], None] = _ignore,
                 on_finished: Callable[[], None] = _ignore) -> None:
        self.port = port
        self.stream = stream
        self.period_ms = period_ms
        self.open_timeout_s = open_timeout_s
        self.after = after
        self.expect = expect  # the board that must answer (None: any board)
        self.serial = serial  # the device list's USB serial for this port, if any
        self.identity: BoardIdentity | None = None
        self.session: Any = None
        self.info: LinkInfo | None = None
        self.on_opened, self.on_failed, self.on_lost = on_opened, on_failed, on_lost
        self.on_stranger, self.on_finished = on_stranger, on_finished
        self._stop = threading.Event()
        self._wake = threading.Event()  # stop() or the session's disconnect
        self._done = threading.Event()  # set before on_finished: the port is closed
        self._thread = threading.Thread(target=self._main, name=f"reader:{port}", daemon=True)

    # ---------------------------------------------------------------- control
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the reader to end; it closes the session on its own thread (never blocks)."""
        self._stop.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        """Started and not yet done (the port may still be open)."""
        return self._thread.is_alive() and not self._done.is_set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait until the reader has closed its port; True if it has (or never started)."""
        if not self._thread.is_alive() and not self._thread.ident:
            return True
        self._done.wait(timeout_s)
        return self._done.is_set() or not self._thread.is_alive()

    # ---------------------------------------------------------------- the thread
    def _main(self) -> None:
        try:
            self._run()
        finally:
            self._done.set()
            self.on_finished()

    def _run(self) -> None:
        from device_drivers.link import DeviceSession

        after, self.after = self.after, None
        if after is not None and not after.wait(HANDOVER_TIMEOUT_MS / 1000):
            log.warning("the previous reader of %s still holds the port", self.port)
        if self.stopping:
            return
        try:
            session = DeviceSession.open(self.port, timeout_s=self.open_timeout_s)
        except BaseException as exc:
            self.on_failed(describe_error(exc))
            return
        self.session = session
        reason: str | None = None
        try:
            info = self._introduce(session)
            if info is None:  # another board answered: it is not touched (no streaming)
                return
            self.info = info
            if not self.stopping:
                self.on_opened(info)
            pushed: list[str] = []

            def dropped(why: str) -> None:  # on the session's I/O thread
                pushed.append(why)
                self._wake.set()

            session.on_disconnect = dropped  # the reader is the session's one listener
            while not self.stopping:
                if pushed or not session.connected:  # (connected: it dropped before we listened)
                    reason = (pushed[0] if pushed else session.disconnect_reason) \
                        or "the link dropped"
                    break
                self._wake.wait()
                self._wake.clear()
        except BaseException as exc:
            err = describe_error(exc)
            log.warning("reader for %s ended: %s", self.port, err.message)
            reason = err.message
        finally:
            session.on_disconnect = None
            self._goodbye(session)
        if reason is not None and not self.stopping:
            self.on_lost(reason)

    def _goodbye(self, session: Any) -> None:
        """Streaming off (best effort, briefly: a job may still hold the session), close."""
        if session.connected and self.info is not None and self.info.streaming:
            from device_drivers.protocol import runtime

            try:
                session.request(runtime.Stream(on=False), timeout_s=STREAM_OFF_TIMEOUT_S)
            except Exception as exc:
                log.debug("stream off failed on %s: %s", self.port, exc)
        session.close()

    def _introduce(self, session: Any) -> LinkInfo | None:
        info = session.model_info()
        link = LinkInfo.from_model_info(self.port, info, session.params())
        self.identity = BoardIdentity.of(info, self.serial)
        if same_board(self.expect, self.identity) is False:
            self.on_stranger(self.identity, link)
            return None
        if info is not None and self.stream:
            try:
                session.stream(True, self.period_ms)
                link.streaming = True
            except Exception as exc:  # a runtime that cannot stream still plots its text
                link.warning = describe_error(exc).message
        return link


class _GuiCalls(QObject):
    """Runs callables on the GUI thread. One for the app's lifetime: a reader's thread emits
    here, never on a face that the GUI thread may be deleting at that moment."""

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def _run(self, fn: Callable[[], None]) -> None:
        fn()


_gui_calls: _GuiCalls | None = None


def _emitter(face: QObject, name: str) -> Callable[..., None]:
    """For the reader's thread: emit ``face.<name>`` on the GUI thread, if the face still
    exists then (the window may have closed while the reader was ending)."""
    global _gui_calls
    if _gui_calls is None:  # created on the GUI thread (by the first face)
        _gui_calls = _GuiCalls()
    calls = _gui_calls

    def emit(*args: Any) -> None:
        def deliver() -> None:
            if shiboken6.isValid(face):
                getattr(face, name).emit(*args)

        calls.call.emit(deliver)

    return emit


class ReaderThread(QObject):
    """The Qt face of a :class:`SessionReader`: its callbacks as signals (``finished`` once
    the port is closed). Stop with :meth:`stop` (never blocks)."""

    opened = Signal(object)  # LinkInfo
    failed = Signal(object)  # JobError (could not open)
    lost = Signal(str)  # the link dropped: reason
    stranger = Signal(object, object)  # BoardIdentity found, LinkInfo: not the expected board
    finished = Signal()

    def __init__(self, port: str, store: Any = None, *, stream: bool = True,
                 period_ms: int = 50, open_timeout_s: float = 2.0,
                 after: ReaderThread | None = None, expect: BoardIdentity | None = None,
                 serial: str | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.store = store
        self.reader = SessionReader(
            port, stream=stream, period_ms=period_ms, open_timeout_s=open_timeout_s,
            after=after.reader if after is not None else None, expect=expect, serial=serial,
            on_opened=_emitter(self, "opened"), on_failed=_emitter(self, "failed"),
            on_lost=_emitter(self, "lost"), on_stranger=_emitter(self, "stranger"),
            on_finished=_emitter(self, "finished"))
        self.setObjectName(f"reader:{port}")

    port = property(lambda self: self.reader.port)
    session = property(lambda self: self.reader.session)
    identity = property(lambda self: self.reader.identity)
    info = property(lambda self: self.reader.info)

    def start(self) -> None:
        self.reader.start()

    def stop(self) -> None:
        self.reader.stop()

    def isRunning(self) -> bool:  # the QThread name connection.py uses
        return self.reader.is_running()

    def wait(self, timeout_ms: int | None = None) -> bool:
        return self.reader.wait(None if timeout_ms is None else timeout_ms / 1000)
