"""Connected boards for the GUI: a Qt-side bridge to the core's hot-plug detection.

:class:`DeviceWatcher` polls an enumerator on its own thread (never the GUI thread: USB
enumeration and virtual-board files can be slow) and emits ``added``/``removed``/``changed``.
Polling and diffing are the core's ``BoardWatcher``; the enumerator is the core's ``scan``
(serial ports, UF2 drives and announced virtual boards) turned into :class:`DeviceEntry`
rows. Tests pass a fake enumerator.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceEntry:
    """One port as the device list shows it."""

    port: str
    name: str
    board_id: str | None = None
    mode: str = "unknown"  # app | bootloader | unknown
    serial: str | None = None
    virtual: bool = False
    backend: str | None = None
    runtime: str | None = None
    detail: str = ""

    @property
    def title(self) -> str:
        return self.name or self.port

    # what the core's BoardWatcher diffs on
    @property
    def key(self) -> str:
        return self.port

    @property
    def identity(self) -> tuple[Any, ...]:
        return (self.port, self.serial, self.mode, self.board_id, self.virtual)


@functools.lru_cache(maxsize=64)
def board_name(board_id: str) -> str:
    """The registry's name for a board id (the id itself if unknown)."""
    try:
        from device_drivers.boards import get_board

        return str(get_board(board_id).name)
    except Exception:
        return board_id


def from_detected(item: Any) -> DeviceEntry:
    """A ``device_drivers.boards`` ``DetectedBoard`` as a list entry."""
    board = getattr(item, "board", None)
    name = getattr(item, "alias", None) or (board.name if board is not None else None)
    if not name:
        name = getattr(item, "product", None) or "Unknown device"
        if board is None and getattr(item, "vid", None) is not None:
            name += " (unknown board)"
    if getattr(board, "is_bridge", False):
        name = f"{board.name} (board unknown)"
    detail = ""
    if getattr(item, "vid", None) is not None and getattr(item, "pid", None) is not None:
        detail = f"USB {item.vid:04x}:{item.pid:04x}"
    if getattr(item, "source", "") == "uf2":
        detail = (detail + " · " if detail else "") + "UF2 bootloader drive"
    return DeviceEntry(
        port=str(item.port), name=str(name), board_id=board.id if board is not None else None,
        mode=str(getattr(item, "mode", "unknown") or "unknown"),
        serial=getattr(item, "serial_number", None), virtual=bool(getattr(item, "virtual", 0)),
        backend=getattr(item, "backend", None), runtime=getattr(item, "runtime_version", None),
        detail=detail)


def default_enumerator() -> Callable[[], list[DeviceEntry]]:
    """The core's detection (``device_drivers.boards.scan``) as list entries."""
    from device_drivers.boards import load_registry, scan

    registry: list[Any] = []

    def enumerate_core() -> list[DeviceEntry]:
        if not registry:
            registry.extend(load_registry())
        return [from_detected(item) for item in scan(registry)]

    return enumerate_core


class DeviceWatcher(QThread):
    """Reports devices coming and going as signals, from its own thread.

    The core's ``BoardWatcher`` polls ``enumerate_fn`` (the core's ``scan`` by default, a
    fake in tests) and diffs; a device that changes is reported as removed then added.
    """

    added = Signal(object)  # DeviceEntry
    removed = Signal(str)  # port
    scan_failed = Signal(str)
    scanned = Signal(list)  # once, after the first scan: list[DeviceEntry]

    def __init__(self, enumerate_fn: Callable[[], list[DeviceEntry]] | None = None,
                 interval_s: float = 0.5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enumerate_fn = enumerate_fn
        self.interval_s = interval_s
        self.setObjectName("device-watcher")

    def stop(self, wait_ms: int = 3000) -> bool:
        self.requestInterruption()
        return self.wait(wait_ms)

    def _enumerate_once(self, enumerate_fn: Callable[[], list[DeviceEntry]]
                        ) -> Callable[[], list[DeviceEntry]]:
        first = [True]

        def enumerate_entries() -> list[DeviceEntry]:
            try:
                items = list(enumerate_fn())
            except Exception as exc:
                self.scan_failed.emit(str(exc))
                raise
            if first[0]:
                first[0] = False
                self.scanned.emit(items)
            return items

        return enumerate_entries

    def _on_event(self, event: Any) -> None:
        if event.kind == "added":
            self.added.emit(event.board)
        elif event.kind == "removed":
            self.removed.emit(event.board.port)

    def run(self) -> None:
        from device_drivers.boards import BoardWatcher

        try:
            enumerate_fn = self.enumerate_fn or default_enumerator()
        except Exception as exc:  # the registry could not be read: say so, list nothing
            log.warning("device detection unavailable: %s", exc)
            self.scan_failed.emit(str(exc))
            return
        watcher = BoardWatcher(self._on_event, interval_s=self.interval_s,
                               enumerate_boards=self._enumerate_once(enumerate_fn))
        while not self.isInterruptionRequested():
            if not watcher.running:  # (re)start: only a failed first scan ends it
                watcher.start()
            self.msleep(50 if watcher.running else max(50, int(self.interval_s * 1000)))
        watcher.stop()


def with_runtime(entry: DeviceEntry, runtime: str | None) -> DeviceEntry:
    with contextlib.suppress(TypeError):
        return replace(entry, runtime=runtime)
    return entry
