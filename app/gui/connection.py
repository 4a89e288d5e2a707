"""The GUI's connection to one board: one ``DeviceSession`` per port, owned by a reader thread.

The reader thread opens the session, asks what the board is (model info), turns streaming
on, then drains the session's parsed telemetry into the dashboard's ``ChannelStore`` every
few milliseconds. Jobs (flash, validate) borrow :attr:`DeviceLink.session`: the session
serialises requests itself, so there is still exactly one owner of the port.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QThread, QTimer, Signal

from app.gui.workers import JobError, describe_error

log = logging.getLogger(__name__)

POLL_MS = 15


@dataclass
class LinkInfo:
    """What the GUI learned about a board when it connected."""

    port: str
    runtime: str | None = None
    board: str | None = None
    model_loaded: bool = False
    model_path: str | None = None
    model_sha256: str | None = None
    model_size: int | None = None
    arena_size: int | None = None
    arena_used: int | None = None
    labels: list[str] = field(default_factory=list)
    default_path: str | None = None
    params: dict[str, int] | None = None
    streaming: bool = False
    warning: str | None = None

    @classmethod
    def from_model_info(cls, port: str, info: Any, params: dict | None) -> LinkInfo:
        li = cls(port=port, params=params)
        if info is None:
            return li
        sha = getattr(info, "sha256", None)
        li.runtime = getattr(info, "runtime", None)
        li.board = getattr(info, "board", None)
        li.model_loaded = bool(getattr(info, "loaded", False))
        li.model_path = getattr(info, "path", None)
        li.model_sha256 = sha.hex() if isinstance(sha, (bytes, bytearray)) else sha
        li.model_size = getattr(info, "size", None)
        li.arena_size = getattr(info, "arena_size", None)
        li.arena_used = getattr(info, "arena_used", None)
        li.labels = list(getattr(info, "labels", None) or [])
        li.default_path = getattr(info, "default_path", None)
        return li


class ReaderThread(QThread):
    """Owns one ``DeviceSession`` for its lifetime. Stop with :meth:`stop` (never terminate)."""

    opened = Signal(object)  # LinkInfo
    failed = Signal(object)  # JobError (could not open)
    lost = Signal(str)  # the link dropped: reason

    def __init__(self, port: str, store: Any, *, stream: bool = True, period_ms: int = 50,
                 open_timeout_s: float = 2.0, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.port = port
        self.store = store
        self.stream = stream
        self.period_ms = period_ms
        self.open_timeout_s = open_timeout_s
        self.session: Any = None
        self.info: LinkInfo | None = None
        self.setObjectName(f"reader:{port}")

    def stop(self, wait_ms: int = 5000) -> bool:
        self.requestInterruption()
        return self.wait(wait_ms)

    def run(self) -> None:
        from device_drivers.link import DeviceSession

        try:
            session = DeviceSession.open(self.port, timeout_s=self.open_timeout_s)
        except BaseException as exc:
            self.failed.emit(describe_error(exc))
            return
        self.session = session
        reason: str | None = None
        try:
            info = self._introduce(session)
            self.info = info
            self.opened.emit(info)
            while not self.isInterruptionRequested():
                if not session.connected:
                    reason = session.disconnect_reason or "the link dropped"
                    break
                batch = session.telemetry()
                if batch.channels or batch.lines:
                    self.store.push(batch, time.time())
                self.msleep(POLL_MS)
        except BaseException as exc:
            err = describe_error(exc)
            log.warning("reader for %s ended: %s", self.port, err.message)
            reason = err.message
        finally:
            if session.connected and self.info is not None and self.info.streaming:
                try:
                    session.stream(False)
                except Exception:
                    log.debug("stream off failed on %s", self.port, exc_info=True)
            session.close()
        if reason is not None:
            self.lost.emit(reason)

    def _introduce(self, session: Any) -> LinkInfo:
        info = session.model_info()
        link = LinkInfo.from_model_info(self.port, info, session.params())
        if info is not None and self.stream:
            try:
                session.stream(True, self.period_ms)
                link.streaming = True
            except Exception as exc:  # a runtime that cannot stream still plots its text
                link.warning = describe_error(exc).message
        return link


class DeviceLink(QObject):
    """The window's connection: which port, in which state, with which session.

    States: ``idle``, ``connecting``, ``connected``, ``lost`` (will retry when
    ``auto_reconnect``), ``failed``.
    """

    state_changed = Signal(str, str)  # state, human-readable detail
    connected = Signal(object)  # LinkInfo
    disconnected = Signal()
    error = Signal(object)  # JobError

    def __init__(self, store: Any, parent: QObject | None = None, *,
                 period_ms: int = 50) -> None:
        super().__init__(parent)
        self.store = store
        self.period_ms = period_ms
        self.port: str | None = None
        self.state = "idle"
        self.info: LinkInfo | None = None
        self.auto_reconnect = False
        self.retry_ms = 1000
        self._reader: ReaderThread | None = None
        self._old: list[ReaderThread] = []
        self._retry = QTimer(self)
        self._retry.setSingleShot(True)
        self._retry.timeout.connect(self._reconnect)

    @property
    def session(self) -> Any:
        """The open session (for jobs), or None."""
        reader = self._reader
        if reader is None or self.state != "connected":
            return None
        return reader.session

    def connect_port(self, port: str) -> None:
        if self.port == port and self.state in ("connecting", "connected"):
            return
        self._stop_reader()
        self.port = port
        self._start()

    def disconnect_port(self) -> None:
        self._retry.stop()
        was = self.port
        self._stop_reader()
        self.port = None
        self.info = None
        if was is not None:
            self._set_state("idle", f"disconnected from {was}")
            self.disconnected.emit()

    def release(self, wait_ms: int = 5000) -> None:
        """Stop the reader so that someone else (a flash back end) may open the port."""
        self._retry.stop()
        self._stop_reader(wait_ms)

    def _start(self) -> None:
        assert self.port is not None
        reader = ReaderThread(self.port, self.store, period_ms=self.period_ms, parent=self)
        reader.opened.connect(self._on_opened)
        reader.failed.connect(self._on_failed)
        reader.lost.connect(self._on_lost)
        reader.finished.connect(self._reap)
        self._reader = reader
        self._set_state("connecting", f"connecting to {self.port}…")
        reader.start()

    def _stop_reader(self, wait_ms: int = 5000) -> None:
        reader, self._reader = self._reader, None
        if reader is None:
            return
        for sig in (reader.opened, reader.failed, reader.lost):
            with contextlib.suppress(RuntimeError, TypeError):
                sig.disconnect()
        if not reader.stop(wait_ms):
            log.warning("reader for %s did not stop within %d ms", reader.port, wait_ms)
            self._old.append(reader)  # keep it referenced until it ends

    def _reap(self) -> None:
        self._old = [r for r in self._old if r.isRunning()]

    def _on_opened(self, info: LinkInfo) -> None:
        self.info = info
        what = info.runtime or "no TinyOps runtime (plotting its text output)"
        self._set_state("connected", f"connected to {info.port} · {what}")
        self.connected.emit(info)

    def _on_failed(self, err: JobError) -> None:
        self._reader = None
        if self.auto_reconnect:
            self._set_state("lost", f"{err.message} · retrying")
            self._retry.start(self.retry_ms)
        else:
            self._set_state("failed", err.message)
            self.error.emit(err)

    def _on_lost(self, reason: str) -> None:
        self._reader = None
        self.info = None
        self.disconnected.emit()
        if self.auto_reconnect and self.port is not None:
            self._set_state("lost", f"lost {self.port}: {reason} · reconnecting")
            self._retry.start(self.retry_ms)
        else:
            self._set_state("lost", f"lost {self.port}: {reason}")
            self.error.emit(JobError(f"lost {self.port}: {reason}",
                                     "check the cable; replug the board and reconnect",
                                     "DisconnectedError"))

    def _reconnect(self) -> None:
        if self.port is not None and self._reader is None:
            self._start()

    def _set_state(self, state: str, detail: str) -> None:
        self.state = state
        self.state_changed.emit(state, detail)

    def shutdown(self) -> None:
        self._retry.stop()
        self._stop_reader()
        for reader in self._old:
            reader.wait(2000)
