"""The GUI's connection to one board: one ``DeviceSession`` per port, owned by a reader thread.

The reader thread opens the session, asks what the board is (model info), turns streaming
on, then watches the link until it drops. Telemetry does not pass through it: once the
session is open the dashboard's ``ChannelStore`` is attached to it and takes what the
session's I/O thread parsed, frame by frame. When the board goes away the store is told
(the dashboard greys out and says so) and the link reconnects by itself: to the same port,
or to the port where a board with the same USB serial number appears (:meth:`board_added`).
Jobs (flash, validate, console input) borrow the session with
:meth:`DeviceLink.lend`: the session serialises requests itself, so there is still exactly
one owner of the port. While a job holds the session the link refuses a disconnect or a
switch to another board (closing the port would kill the job); :meth:`DeviceLink.when_idle`
defers one instead.

The GUI thread never waits for a reader: stopping one requests its interruption, the reader
cleans up on its own thread, and a new reader for the same port waits (on its own thread)
for the old one to let go of the port before it opens it.

The states, their transitions and the link's policy are Qt-free (``app.state.link``); this
class owns the reader and turns the model's changes into signals. A disconnect is pushed:
the reader (the session's one owner) listens to the session's ``on_disconnect``, called on
its I/O thread the moment a read or write fails, and reports ``lost`` at once through a
queued signal, so the state changes without waiting for anybody's poll.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.board_identity import BoardIdentity
from app.gui.link_info import LinkInfo
from app.gui.reader import HANDOVER_TIMEOUT_MS, ReaderThread
from app.gui.workers import JobError
from app.state.link import (
    IllegalTransition,
    LinkEvent,
    LinkMachine,
    LinkModel,
    LinkState,
)

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

log = logging.getLogger(__name__)
__all__ = ["DeviceLink", "LinkInfo", "LinkState", "ReaderThread"]



class DeviceLink(QObject):
    """The window's connection: which port, in which state (:class:`LinkState`), with which
    session. The model (:attr:`model`) decides; this class owns the reader and signals.

    :meth:`connect_port` and :meth:`disconnect_port` do nothing and return False while a job
    holds the session (see :meth:`lend`); :meth:`when_idle` runs an action once none does.
    """

    state_changed = Signal(str, str)  # state (a LinkState value), human-readable detail
    connected = Signal(object)  # LinkInfo
    disconnected = Signal()
    error = Signal(object)  # JobError
    idle_again = Signal()  # the last job holding the session (or the port) finished
    stranger = Signal(str, str)  # port, message: another board answered where ours was

    def __init__(self, store: Any, parent: QObject | None = None, *,
                 period_ms: int = 50) -> None:
        super().__init__(parent)
        self.store = store
        self.period_ms = period_ms
        self.model = LinkModel(LinkMachine(self._changed))
        self.info: LinkInfo | None = None
        self.auto_reconnect = False  # also retry a port that failed to open at first
        self.retry_ms = 1000
        self.lookup: Callable[[str], Any] | None = None  # port -> DeviceEntry (serial)
        self._reader: ReaderThread | None = None
        self._old: list[ReaderThread] = []
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._reconnect)

    # the model's fields, read (and in tests set) as the link's own
    state = property(lambda self: self.model.state)
    port = property(lambda self: self.model.port,
                    lambda self, v: setattr(self.model, "port", v))
    serial = property(lambda self: self.model.serial,
                      lambda self, v: setattr(self.model, "serial", v))
    outage = property(lambda self: self.model.outage,
                      lambda self, v: setattr(self.model, "outage", v))
    identity = property(lambda self: self.model.identity,
                        lambda self, v: setattr(self.model, "identity", v))
    strangers = property(lambda self: self.model.strangers)

    def _changed(self, state: LinkState, detail: str) -> None:
        self.state_changed.emit(state.value, detail)

    def _fire(self, event: LinkEvent, detail: str) -> bool:
        """Take ``event``; an illegal one is refused (logged), the state stays."""
        try:
            self.model.machine.fire(event, detail)
        except IllegalTransition as exc:
            log.warning("link: %s", exc)
            return False
        return True

    @property
    def session(self) -> DeviceSession | None:
        """The open session, or None. Jobs get it with :meth:`lend` instead."""
        reader = self._reader
        if reader is None or self.state is not LinkState.CONNECTED:
            return None
        return reader.session

    @property
    def closing(self) -> bool:
        """A stopped reader is still closing its port (it is free once this is False)."""
        return any(r.isRunning() for r in self._old)

    # ------------------------------------------------------------------ jobs
    @property
    def busy(self) -> bool:
        """A job holds the session (or the released port)."""
        return self.model.busy

    def busy_with(self) -> str:
        return self.model.busy_with()

    def lend(self, job: Any) -> None:
        """Mark ``job`` (a :class:`~app.gui.workers.Job`) as using the port until it ends."""
        if not getattr(job, "running", True):
            return
        self.model.lend(job)
        job.finished.connect(lambda j=job: self._returned(j))

    def _returned(self, job: Any) -> None:
        pending = self.model.returned(job)
        if self.model.busy:
            return
        if pending is not None:
            pending()
        self.idle_again.emit()

    def release(self) -> Callable[[float], bool]:
        """Let a flash back end open the port itself: the reader closes the session.

        Returns ``wait(timeout_s) -> bool`` for the job to call first (on its thread): True
        once the port is free. Call :meth:`resume` when the job ends.
        """
        self._retry.stop()
        reader = self._stop_reader()
        if self.identity is not None:  # the flash changes the model: not a sign of a swap
            self.identity = self.identity.with_model(None)
        if self.port is not None:
            self._fire(LinkEvent.RELEASE, f"{self.port} is lent to the flash back end")

        def wait(timeout_s: float = HANDOVER_TIMEOUT_MS / 1000) -> bool:
            return reader is None or reader.wait(int(timeout_s * 1000))

        return wait

    def resume(self) -> None:
        """Reconnect after :meth:`release` (unless something else happened meanwhile)."""
        if self.port is not None and self._reader is None and \
                self.model.machine.can(LinkEvent.RESUME):
            self._start(LinkEvent.RESUME)

    # ------------------------------------------------------------------ connect
    def when_idle(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once no job holds the port (now if none does); the last one wins."""
        if self.model.when_idle(action):
            action()

    def connect_port(self, port: str) -> bool:
        if self.port == port and self.state in (LinkState.CONNECTING, LinkState.CONNECTED):
            return True
        if self.busy:
            return False
        self._retry.stop()
        self._stop_reader()
        entry = self.lookup(port) if self.lookup is not None else None
        self.serial = getattr(entry, "serial", None) if entry is not None else (
            self.serial if port == self.port else None)
        self.identity = None  # a choice (the user's, the kiosk's): whichever board is there
        self.outage = None
        self.strangers.pop(port, None)
        self.port = port
        self._start()
        return True

    def disconnect_port(self) -> bool:
        if self.busy:
            return False
        self._retry.stop()
        was = self.port
        self._stop_reader()
        self.port = None
        self.info = None
        self.outage = None
        self.identity = None
        self.store.detach()
        if was is not None and self._fire(LinkEvent.DISCONNECT, f"disconnected from {was}"):
            self.disconnected.emit()
        return True

    def _start(self, event: LinkEvent = LinkEvent.CONNECT) -> None:
        assert self.port is not None
        if not self._fire(event, f"connecting to {self.port}…"):
            return
        previous = next((r for r in reversed(self._old)
                         if r.port == self.port and r.isRunning()), None)
        entry = self.lookup(self.port) if self.lookup is not None else None
        listed = getattr(entry, "serial", None) if self.lookup is not None else self.serial
        reader = ReaderThread(self.port, self.store, period_ms=self.period_ms,
                              after=previous, expect=self.identity, serial=listed,
                              parent=self)
        reader.stranger.connect(self._on_stranger)
        reader.opened.connect(self._on_opened)
        reader.failed.connect(self._on_failed)
        reader.lost.connect(self._reader_lost)
        reader.finished.connect(self._reap)
        self._reader = reader
        reader.start()

    def _stop_reader(self) -> ReaderThread | None:
        """Ask the reader to end (it closes the port on its own thread); returns it."""
        reader, self._reader = self._reader, None
        if reader is None:
            return None
        if reader.session is not None:
            self.store.detach(reader.session)
        for sig in (reader.opened, reader.failed, reader.lost, reader.stranger):
            with contextlib.suppress(RuntimeError, TypeError):
                sig.disconnect()
        reader.stop()
        if reader.isRunning():
            self._old.append(reader)  # referenced until it ends (then reaped)
        return reader

    def _reap(self) -> None:
        self._old = [r for r in self._old if r.isRunning()]

    def _stale(self) -> bool:
        """The signal being handled comes from a reader that was stopped meanwhile."""
        sender = self.sender()
        return isinstance(sender, ReaderThread) and sender is not self._reader

    def _on_opened(self, info: LinkInfo) -> None:
        if self._stale():
            return
        self.info = info
        reader = self._reader
        if reader is not None and reader.identity is not None:
            self.identity = (self.identity or BoardIdentity()).merged(reader.identity)
        session = reader.session if reader is not None else None
        if session is not None:
            back = self.outage is not None
            self.store.attach(session, break_at=time.time() if back else None)
        self.outage = None
        what = info.runtime or "no TinyOps runtime (plotting its text output)"
        self._fire(LinkEvent.OPENED, f"connected to {info.port} · {what}")
        self.connected.emit(info)

    def _on_failed(self, err: JobError) -> None:
        if self._stale():
            return
        self._reader = None
        then = self.model.open_failed(err.message, auto_reconnect=self.auto_reconnect,
                                      retry_ms=self.retry_ms)
        self._fire(then.event, then.detail)
        if then.retry_ms is not None:
            self._retry.start(then.retry_ms)
        if then.tell:
            self.error.emit(err)

    def _reader_lost(self, reason: str) -> None:
        if not self._stale():
            self._on_lost(reason)

    def _on_lost(self, reason: str) -> None:
        """The board went away: keep its place and reconnect by itself when it is back."""
        self._stop_reader()  # it is ending (or, if not, is told to): referenced until then
        self.info = None
        then = self.model.dropped(reason, auto_reconnect=self.auto_reconnect)
        self.store.outage = reason
        self.disconnected.emit()
        self._fire(then.event, then.detail)
        if then.tell:
            self.error.emit(JobError(f"lost {self.board_label()} (at {self.port}): {reason}",
                                     "TinyOps reconnects when the board is back; check the "
                                     "cable", "DisconnectedError"))
        if then.retry_ms is not None:
            self._retry.start(then.retry_ms)

    def board_label(self) -> str:
        """The board this link is to, for messages: its identity, never a bare path."""
        return self.model.board_label()

    def _on_stranger(self, found: BoardIdentity, info: LinkInfo) -> None:
        """Another board answered at our board's path: list it, never connect to it."""
        if self._stale():
            return
        port = self.port or info.port
        self._stop_reader()
        self._retry.stop()  # its path is taken: wait for our board to be listed again
        self.strangers[port] = found
        ours = self.board_label()
        msg = (f"another board ({found.describe()}) answered at {port}, where {ours} was: "
               f"not connected to it")
        log.warning(msg)
        self._fire(LinkEvent.STRANGER, f"{ours} is away · waiting for it to come back")
        self.stranger.emit(port, msg)  # last: a handler may connect to it (the kiosk)

    def board_added(self, entry: Any) -> None:
        """A board appeared: if it is the one that went away, follow it (same or new path)."""
        serial = getattr(entry, "serial", None)
        port = getattr(entry, "port", None)
        if not self.model.follows(port, serial):
            return
        self.strangers.pop(port, None)
        self._retry.stop()
        if self._reader is None or port != self.port:
            self._stop_reader()
            self.port = port
            self.serial = serial or self.serial
            self._start()

    def _reconnect(self) -> None:
        if self.port is not None and self._reader is None and self.port not in self.strangers:
            self._start()

    def shutdown(self, wait_ms: int = 3000) -> bool:
        """At exit: stop the reader and wait (bounded) for every reader to close its port.

        Cancel the jobs first: a reader's goodbye is then quick. True if all ended in time.
        """
        self._retry.stop()
        self.model.pending = None
        self._stop_reader()
        deadline = time.monotonic() + wait_ms / 1000
        for reader in self._old:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if not reader.wait(left):
                log.warning("reader for %s did not stop within %d ms", reader.port, wait_ms)
        self._reap()
        return not self._old
