"""The thread that owns one board's ``DeviceSession`` for the GUI (see ``connection.py``).

It opens the port, asks what the board is (model info) and, when it must be a particular
board (a reconnect), checks that it is before it touches it: another board that answers
is reported (:attr:`ReaderThread.stranger`) and left alone, never streamed from.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from app.board_identity import BoardIdentity, same_board
from app.gui.link_info import LinkInfo
from app.gui.workers import describe_error

log = logging.getLogger(__name__)

WATCH_MS = 50  # how often the reader looks at the link's state (no data goes through it)
STREAM_OFF_TIMEOUT_S = 0.3  # the reader's goodbye: never worth blocking on
HANDOVER_TIMEOUT_MS = 8000  # a new reader waits this long for the old one to close


class ReaderThread(QThread):
    """Owns one ``DeviceSession`` for its lifetime. Stop with :meth:`stop` (never terminate).

    ``after``: a reader that must have closed the port before this one opens it.
    """

    opened = Signal(object)  # LinkInfo
    failed = Signal(object)  # JobError (could not open)
    lost = Signal(str)  # the link dropped: reason
    stranger = Signal(object, object)  # BoardIdentity found, LinkInfo: not the expected board

    def __init__(self, port: str, store: Any, *, stream: bool = True, period_ms: int = 50,
                 open_timeout_s: float = 2.0, after: QThread | None = None,
                 expect: BoardIdentity | None = None, serial: str | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.port = port
        self.store = store
        self.stream = stream
        self.period_ms = period_ms
        self.open_timeout_s = open_timeout_s
        self.after = after
        self.expect = expect  # the board that must answer (None: any board)
        self.serial = serial  # the device list's USB serial for this port, if any
        self.identity: BoardIdentity | None = None
        self.session: Any = None
        self.info: LinkInfo | None = None
        self.setObjectName(f"reader:{port}")

    def stop(self) -> None:
        """Ask the reader to end; it closes the session on its own thread (never blocks)."""
        self.requestInterruption()

    def run(self) -> None:
        from device_drivers.link import DeviceSession

        after, self.after = self.after, None
        if after is not None and not after.wait(HANDOVER_TIMEOUT_MS):
            log.warning("the previous reader of %s still holds the port", self.port)
        if self.isInterruptionRequested():
            return
        try:
            session = DeviceSession.open(self.port, timeout_s=self.open_timeout_s)
        except BaseException as exc:
            self.failed.emit(describe_error(exc))
            return
        self.session = session
        reason: str | None = None
        try:
            info = self._introduce(session)
            if info is None:  # another board answered: it is not touched (no streaming)
                return
            self.info = info
            if not self.isInterruptionRequested():
                self.opened.emit(info)
            while not self.isInterruptionRequested():
                if not session.connected:
                    reason = session.disconnect_reason or "the link dropped"
                    break
                self.msleep(WATCH_MS)
        except BaseException as exc:
            err = describe_error(exc)
            log.warning("reader for %s ended: %s", self.port, err.message)
            reason = err.message
        finally:
            self._goodbye(session)
        if reason is not None and not self.isInterruptionRequested():
            self.lost.emit(reason)

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
            self.stranger.emit(self.identity, link)
            return None
        if info is not None and self.stream:
            try:
                session.stream(True, self.period_ms)
                link.streaming = True
            except Exception as exc:  # a runtime that cannot stream still plots its text
                link.warning = describe_error(exc).message
        return link
