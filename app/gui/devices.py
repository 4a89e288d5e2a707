"""Connected boards for the GUI: a Qt-side bridge to the core's hot-plug detection.

:class:`DeviceWatcher` adapts ``app.state.device_feed.DeviceFeed`` (a plain thread that polls
an enumerator, never on the GUI thread: USB enumeration and virtual-board files can be slow)
to the signals ``added``/``removed``/``scanned``/``scan_failed``.
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

from PySide6.QtCore import QObject, Signal

from app.state.device_feed import DeviceFeed

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


class DeviceWatcher(QObject):
    """Reports devices coming and going as signals: the Qt side of ``DeviceFeed``.

    The feed's plain thread keeps the core's ``BoardWatcher`` polling ``enumerate_fn`` (the
    core's ``scan`` by default, a fake in tests); a device that changes is reported as
    removed then added. The signals are emitted on the feed's threads and reach slots on
    the GUI thread queued.
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
        self.feed = DeviceFeed(self._enumerator, interval_s, on_added=self.added.emit,
                               on_removed=self.removed.emit, on_scanned=self.scanned.emit,
                               on_scan_failed=self.scan_failed.emit)

    def _enumerator(self) -> Callable[[], list[DeviceEntry]]:
        return self.enumerate_fn or default_enumerator()

    def start(self) -> None:
        self.feed.start()

    @property
    def running(self) -> bool:
        return self.feed.running

    def stop(self, wait_ms: int = 3000) -> bool:
        return self.feed.stop(wait_ms / 1000)


def with_runtime(entry: DeviceEntry, runtime: str | None) -> DeviceEntry:
    with contextlib.suppress(TypeError):
        return replace(entry, runtime=runtime)
    return entry
