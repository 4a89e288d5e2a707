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


def _from_core(item: Any) -> DeviceEntry:
    """Adapt a detection record from ``device_drivers.boards`` (attribute names may vary)."""
    get = (item.get if isinstance(item, dict) else lambda k, d=None: getattr(item, k, d))
    board = get("board")
    board_id = get("board_id") or (getattr(board, "id", None) if board is not None else None)
    name = get("name") or (getattr(board, "name", None) if board is not None else None)
    return DeviceEntry(
        port=str(get("port") or get("device")),
        name=str(name or get("description") or get("port")),
        board_id=board_id,
        mode=str(get("mode") or "unknown"),
        serial=get("serial_number") or get("serial") or get("usb_serial"),
        virtual=bool(get("virtual", False)),
        backend=get("backend") or (getattr(board, "backend", None) if board else None),
        runtime=get("runtime") or get("runtime_version"),
    )


def default_enumerator() -> Callable[[], list[DeviceEntry]]:
    """The core's detection if it is there, else the fallback."""
    try:
        from device_drivers.boards import detect  # type: ignore[attr-defined]
        snapshot = getattr(detect, "list_boards", None) or getattr(detect, "detect", None)
    except ImportError:
        snapshot = None
    if snapshot is None:
        return fallback_devices

    def enumerate_core() -> list[DeviceEntry]:
        entries = [_from_core(item) for item in snapshot()]
        ports = {e.port for e in entries}
        return entries + [v for v in virtual_devices() if v.port not in ports]

    return enumerate_core


class DeviceWatcher(QThread):
    """Polls ``enumerate_fn`` every ``interval_s`` and reports differences as signals."""

    added = Signal(object)  # DeviceEntry
    removed = Signal(str)  # port
    changed = Signal(object)  # DeviceEntry
    scan_failed = Signal(str)
    scanned = Signal(list)  # once, after the first scan: list[DeviceEntry]

    def __init__(self, enumerate_fn: Callable[[], list[DeviceEntry]] | None = None,
                 interval_s: float = 0.5, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.enumerate_fn = enumerate_fn or default_enumerator()
        self.interval_ms = max(50, int(interval_s * 1000))
        self.setObjectName("device-watcher")

    def stop(self, wait_ms: int = 3000) -> bool:
        self.requestInterruption()
        return self.wait(wait_ms)

    def run(self) -> None:
        known: dict[str, DeviceEntry] = {}
        failing = False
        first = True
        while not self.isInterruptionRequested():
            try:
                current = {d.port: d for d in self.enumerate_fn()}
                failing = False
            except Exception as exc:  # keep watching: a transient OS error must not end it
                if not failing:
                    log.warning("device scan failed: %s", exc)
                    self.scan_failed.emit(str(exc))
                failing = True
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
            if first:
                first = False
                self.scanned.emit(list(known.values()))
            self._sleep()

    def _sleep(self) -> None:
        slept = 0
        while slept < self.interval_ms and not self.isInterruptionRequested():
            self.msleep(50)
            slept += 50


def with_runtime(entry: DeviceEntry, runtime: str | None) -> DeviceEntry:
    with contextlib.suppress(TypeError):
        return replace(entry, runtime=runtime)
    return entry
