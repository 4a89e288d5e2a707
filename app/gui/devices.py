"""Connected boards for the GUI: a Qt-side bridge to the core's hot-plug detection.

:class:`DeviceWatcher` polls an enumerator on its own thread (never the GUI thread: USB
enumeration and virtual-board files can be slow) and emits ``added``/``removed``/``changed``.
The enumerator is the board watcher's snapshot from ``device_drivers.boards`` when that is
available, else :func:`fallback_devices` (pyserial's port list plus announced virtual boards).
Tests pass a fake enumerator.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
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


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def virtual_devices() -> list[DeviceEntry]:
    """Running virtual boards announced in ``paths.virtual_boards_dir()``."""
    from device_drivers import paths

    out = []
    for path in sorted(paths.virtual_boards_dir().glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            pid = int(data.get("pid", 0))
            port = str(data["port"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _pid_alive(pid):
            continue
        board = data.get("board") or "virtual"
        out.append(DeviceEntry(port=port, name=board_name(board), board_id=board,
                               mode="app", virtual=True, backend="virtual",
                               detail=f"pid {pid}"))
    return out


@functools.lru_cache(maxsize=64)
def board_name(board_id: str) -> str:
    """The registry's name for a board id (the id itself if unknown)."""
    try:
        from device_drivers.boards.registry import get_board

        return str(get_board(board_id).name)
    except Exception:
        return board_id


def fallback_devices() -> list[DeviceEntry]:
    """USB serial ports (pyserial) plus running virtual boards, without identification."""
    from serial.tools import list_ports

    out = []
    for p in list_ports.comports():
        if p.vid is None:  # built-in UARTs (/dev/ttyS*) are never boards people plug in
            continue
        name = p.product or p.description or "USB serial device"
        out.append(DeviceEntry(port=p.device, name=name, serial=p.serial_number,
                               detail=f"{p.vid:04x}:{p.pid:04x}"))
    return out + virtual_devices()


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
    """The core's detection (``device_drivers.boards.scan``) if present, else the fallback."""
    try:
        from device_drivers.boards import load_registry, scan
    except ImportError:
        return fallback_devices
    registry: list[Any] = []

    def enumerate_core() -> list[DeviceEntry]:
        if not registry:
            registry.extend(load_registry())
        return [from_detected(item) for item in scan(registry)]

    return enumerate_core


class DeviceWatcher(QThread):
    """Reports devices coming and going as signals, from its own thread.

    Uses the core's ``BoardWatcher`` (polling + diff) when it exists, over ``enumerate_fn``
    (the core's ``scan`` by default, a fake in tests); falls back to polling here.
    """

    added = Signal(object)  # DeviceEntry
    removed = Signal(str)  # port
    changed = Signal(object)  # DeviceEntry
    scan_failed = Signal(str)
    scanned = Signal(list)  # once, after the first scan: list[DeviceEntry]

    def __init__(self, enumerate_fn: Callable[[], list[DeviceEntry]] | None = None,
                 interval_s: float = 0.5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enumerate_fn = enumerate_fn or default_enumerator()
        self.interval_s = interval_s
        self.interval_ms = max(50, int(interval_s * 1000))
        self.setObjectName("device-watcher")

    def stop(self, wait_ms: int = 3000) -> bool:
        self.requestInterruption()
        return self.wait(wait_ms)

    def _enumerate_once(self) -> Callable[[], list[DeviceEntry]]:
        first = [True]

        def enumerate_entries() -> list[DeviceEntry]:
            try:
                items = list(self.enumerate_fn())
            except Exception as exc:
                self.scan_failed.emit(str(exc))
                raise
            if first[0]:
                first[0] = False
                self.scanned.emit(items)
            return items

        return enumerate_entries

    def _on_event(self, event: Any) -> None:
        entry = event.board
        if event.kind == "added":
            self.added.emit(entry)
        elif event.kind == "removed":
            self.removed.emit(entry.port)

    def run(self) -> None:
        try:
            from device_drivers.boards.watcher import BoardWatcher
        except ImportError:
            self._poll()
            return
        watcher = BoardWatcher(self._on_event, interval_s=self.interval_s,
                               enumerate_boards=self._enumerate_once(), initial=True)
        watcher.start()
        if not watcher.running:  # the first scan failed: keep trying here
            self._poll()
            return
        while not self.isInterruptionRequested():
            self.msleep(50)
        watcher.stop()

    def _poll(self) -> None:
        known: dict[str, DeviceEntry] = {}
        enumerate_entries = self._enumerate_once()
        while not self.isInterruptionRequested():
            try:
                current = {d.port: d for d in enumerate_entries()}
            except Exception as exc:  # keep watching: a transient OS error must not end it
                log.warning("device scan failed: %s", exc)
                current = known
            for port in [p for p in known if p not in current]:
                del known[port]
                self.removed.emit(port)
            for port, dev in current.items():
                old = known.get(port)
                if old is None:
                    known[port] = dev
                    self.added.emit(dev)
                elif old != dev:
                    known[port] = dev
                    self.changed.emit(dev)
            slept = 0
            while slept < self.interval_ms and not self.isInterruptionRequested():
                self.msleep(50)
                slept += 50


def with_runtime(entry: DeviceEntry, runtime: str | None) -> DeviceEntry:
    with contextlib.suppress(TypeError):
        return replace(entry, runtime=runtime)
    return entry
