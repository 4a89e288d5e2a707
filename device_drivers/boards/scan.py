"""One look at everything plugged in: serial ports, UF2 drives and virtual boards."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from device_drivers.boards.aliases import load_aliases, serial_for_alias
from device_drivers.boards.detect import DetectedBoard, detect_serial
from device_drivers.boards.registry import Board, load_registry
from device_drivers.boards.uf2 import detect_uf2, find_uf2_drives
from device_drivers.boards.virtual_boards import detect_virtual, read_announcements
from device_drivers.errors import InputError, PortError

log = logging.getLogger(__name__)


def list_port_records() -> list[Any]:
    from serial.tools import list_ports

    return list(list_ports.comports())


def scan(registry: Sequence[Board] | None = None, *,
         ports: Iterable[Any] | Callable[[], Iterable[Any]] | None = None,
         uf2_roots: Sequence[str] | None = None,
         virtual_dir: str | os.PathLike[str] | None = None,
         aliases: dict[str, str] | None = None,
         include_all: bool = False) -> list[DetectedBoard]:
    """Every board visible now, serial ports first, each with its alias applied."""
    boards = list(registry) if registry is not None else load_registry()
    records = ports() if callable(ports) else (ports if ports is not None
                                               else list_port_records())
    found = detect_serial(records, boards, include_all=include_all)
    try:
        found += detect_uf2(find_uf2_drives(uf2_roots), boards)
    except OSError as exc:  # an unreadable mount point must not hide the serial ports
        log.info("UF2 drive scan failed: %s", exc)
    found += detect_virtual(read_announcements(virtual_dir), boards)
    if aliases is None:
        try:
            aliases = load_aliases()
        except InputError as exc:
            log.warning("%s", exc)
            aliases = {}
    for item in found:
        if item.serial_number and item.serial_number in aliases:
            item.alias = aliases[item.serial_number]
    return found


def resolve_port(text: str, boards: Sequence[DetectedBoard] | None = None) -> str:
    """A port for ``text``: an alias or USB serial number of a connected board, else ``text``.

    Raises PortError when ``text`` names an alias whose board is not connected.
    """
    serial = serial_for_alias(text)
    wanted = serial or text
    if serial is None and ("/" in text or "\\" in text or "://" in text or
                           text.upper().startswith("COM")):
        return text
    current = list(boards) if boards is not None else scan()
    for item in current:
        if item.serial_number and item.serial_number == wanted and item.source == "serial":
            return item.port
    if serial is not None:
        raise PortError(f"board {text!r} (serial {serial}) is not connected",
                        "plug it in, then run `tinyops boards` to check")
    return text
