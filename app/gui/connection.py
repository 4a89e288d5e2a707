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
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.board_identity import BoardIdentity
from app.gui.link_info import LinkInfo
from app.gui.reader import HANDOVER_TIMEOUT_MS, ReaderThread
from app.gui.workers import JobError

log = logging.getLogger(__name__)
__all__ = ["DeviceLink", "LinkInfo", "ReaderThread"]

RECONNECT_MS = 400  # retry period while a lost board is away (it is back within 2 s)


class DeviceLink(QObject):
    """The window's connection: which port, in which state, with which session.

    States: ``idle``, ``connecting``, ``connected``, ``lost`` (will retry when
    ``auto_reconnect``), ``failed``, ``released`` (a flash back end has the port).

    :meth:`connect_port` and :meth:`disconnect_port` do nothing and return False while a job
    holds the session (see :meth:`lend`); :meth:`when_idle` runs an action once none does.
    """

    state_changed = Signal(str, str)  # state, human-readable detail
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
        self.port: str | None = None
        self.state = "idle"
        self.info: LinkInfo | None = None
        self.auto_reconnect = False  # also retry a port that failed to open at first
        self.retry_ms = 1000
        self.serial: str | None = None  # USB serial of the board on ``port``, if known
        self.lookup: Callable[[str], Any] | None = None  # port -> DeviceEntry (serial)
        self.outage: str | None = None  # why the board went away, while it is away
        self.identity: BoardIdentity | None = None  # the board this link is to, once known
        self.strangers: dict[str, BoardIdentity] = {}  # ports where another board answered
        self._reader: ReaderThread | None = None
        self._old: list[ReaderThread] = []
        self._holders: list[Any] = []  # jobs using the session or the released port
        self._pending: Callable[[], Any] | None = None
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._reconnect)

    @property
    def session(self) -> Any:
        """The open session, or None. Jobs get it with :meth:`lend` instead."""
        reader = self._reader
        if reader is None or self.state != "connected":
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
        return bool(self._holders)

    def busy_with(self) -> str:
        return ", ".join(str(getattr(j, "name", "a job")) for j in self._holders)

    def lend(self, job: Any) -> None:
        """Mark ``job`` (a :class:`~app.gui.workers.Job`) as using the port until it ends."""
        if not getattr(job, "running", True):
            return
        self._holders.append(job)
        job.finished.connect(lambda j=job: self._returned(j))

    def _returned(self, job: Any) -> None:
        if job in self._holders:
            self._holders.remove(job)
        if self._holders:
            return
        pending, self._pending = self._pending, None
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
            self._set_state("released", f"{self.port} is lent to the flash back end")

        def wait(timeout_s: float = HANDOVER_TIMEOUT_MS / 1000) -> bool:
            return reader is None or reader.wait(int(timeout_s * 1000))

        return wait

    def resume(self) -> None:
        """Reconnect after :meth:`release` (unless something else happened meanwhile)."""
        if self.port is not None and self._reader is None and self.state == "released":
            self._start()

    # ------------------------------------------------------------------ connect
    def when_idle(self, action: Callable[[], Any]) -> None:
        """Run ``action`` once no job holds the port (now if none does); the last one wins."""
        if not self.busy:
            action()
        else:
            self._pending = action

    def connect_port(self, port: str) -> bool:
        if self.port == port and self.state in ("connecting", "connected"):
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
        if was is not None:
            self._set_state("idle", f"disconnected from {was}")
            self.disconnected.emit()
        return True

    def _start(self) -> None:
        assert self.port is not None
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
        reader.lost.connect(self._on_lost)
        reader.finished.connect(self._reap)
        self._reader = reader
        self._set_state("connecting", f"connecting to {self.port}…")
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

    def _on_opened(self, info: LinkInfo) -> None:
        self.info = info
        reader = self._reader
        if reader is not None and reader.identity is not None:
            self.identity = (self.identity or BoardIdentity()).merged(reader.identity)
        if reader is not None and reader.session is not None:
            back = self.outage is not None
            self.store.attach(reader.session, break_at=time.time() if back else None)
        self.outage = None
        what = info.runtime or "no TinyOps runtime (plotting its text output)"
        self._set_state("connected", f"connected to {info.port} · {what}")
        self.connected.emit(info)

    def _on_failed(self, err: JobError) -> None:
        self._reader = None
        if self.outage is not None and self.port is not None:  # still away: keep trying
            self._set_state("lost", f"{self.board_label()} is away · waiting for it to "
                            "come back")
            self._retry.start(RECONNECT_MS)
        elif self.auto_reconnect:
            self._set_state("lost", f"{err.message} · retrying")
            self._retry.start(self.retry_ms)
        else:
            self._set_state("failed", err.message)
            self.error.emit(err)

    def _on_lost(self, reason: str) -> None:
        """The board went away: keep its place and reconnect by itself when it is back."""
        self._stop_reader()  # it is ending (or, if not, is told to): referenced until then
        self.info = None
        self.outage = reason
        self.store.outage = reason
        self.disconnected.emit()
        why = reason.replace(f" from {self.port}", "").replace(str(self.port), "its port")
        self._set_state("lost", f"lost {self.board_label()}: {why} · reconnecting")
        if not self.auto_reconnect:  # the kiosk has nobody to tell; a desk has
            self.error.emit(JobError(f"lost {self.board_label()} (at {self.port}): {reason}",
                                     "TinyOps reconnects when the board is back; check the "
                                     "cable", "DisconnectedError"))
        self._retry.start(RECONNECT_MS)

    def board_label(self) -> str:
        """The board this link is to, for messages: its identity, never a bare path."""
        if self.identity is not None and self.identity.known:
            return self.identity.describe()
        return f"the board at {self.port}" if self.port else "the board"

    def _on_stranger(self, found: BoardIdentity, info: LinkInfo) -> None:
        """Another board answered at our board's path: list it, never connect to it."""
        port = self.port or info.port
        self._stop_reader()
        self._retry.stop()  # its path is taken: wait for our board to be listed again
        self.strangers[port] = found
        ours = self.board_label()
        msg = (f"another board ({found.describe()}) answered at {port}, where {ours} was: "
               f"not connected to it")
        log.warning(msg)
        self._set_state("lost", f"{ours} is away · waiting for it to come back")
        self.stranger.emit(port, msg)  # last: a handler may connect to it (the kiosk)

    def board_added(self, entry: Any) -> None:
        """A board appeared: if it is the one that went away, follow it (same or new path).

        With a USB serial on both sides the serial decides; without one only the old path
        is tried, and the reader checks the board's identity before using it."""
        if self.outage is None or self.port is None or self.busy:
            return
        serial = getattr(entry, "serial", None)
        port = getattr(entry, "port", None)
        want = (self.identity.serial if self.identity is not None else None) or self.serial
        if serial and want:
            if serial != want:
                return  # another board: listed, not connected to
        elif port != self.port:
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

    def _set_state(self, state: str, detail: str) -> None:
        self.state = state
        self.state_changed.emit(state, detail)

    def shutdown(self, wait_ms: int = 3000) -> bool:
        """At exit: stop the reader and wait (bounded) for every reader to close its port.

        Cancel the jobs first: a reader's goodbye is then quick. True if all ended in time.
        """
        self._retry.stop()
        self._pending = None
        self._stop_reader()
        deadline = time.monotonic() + wait_ms / 1000
        for reader in self._old:
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if not reader.wait(left):
                log.warning("reader for %s did not stop within %d ms", reader.port, wait_ms)
        self._reap()
        return not self._old
