"""Which board is on which port: pure functions over ``serial.tools.list_ports`` records.

``identify(record, registry)`` ranks registry boards for one port record, most specific
first, each with a confidence in [0, 1], the mode it implies (app / bootloader / unknown)
and the reason. The rules, in order of strength:

- a USB id listed for one board only: 0.95; shared by ``n`` boards: 0.5 + 0.45/n;
- a generic bridge entry ("unknown board behind a CP210x"): 0.5;
- a board known to sit behind that bridge chip: 0.3 (a bridge says nothing about the board);
- the USB product/manufacturer string matching a board's patterns adds 0.25/k (k = boards
  it matches), a product string matching none of a board's patterns takes 0.15 away;
- no USB ids reported (some OSes/drivers): strings alone, at most 0.55.

A mode that exposes no serial port (the RP2040 boot ROM, DFU bootloaders) never matches a
serial port record, so an id shared by an application and such a bootloader means "app".
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from device_drivers.boards.registry import Board, UsbId

_HWID_RE = re.compile(r"VID[:_]PID=([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})|VID_([0-9A-Fa-f]{4})&PID_"
                      r"([0-9A-Fa-f]{4})")


@dataclass(frozen=True)
class PortRecord:
    """The fields of a ``ListPortInfo`` detection uses (any object with them will do)."""

    device: str
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    description: str | None = None
    interface: str | None = None
    location: str | None = None
    hwid: str | None = None

    @classmethod
    def from_port(cls, info: Any) -> PortRecord:
        """Copy a ListPortInfo-like object; recover VID/PID from ``hwid`` when missing."""
        vid, pid = getattr(info, "vid", None), getattr(info, "pid", None)
        hwid = getattr(info, "hwid", None)
        if (vid is None or pid is None) and hwid:
            m = _HWID_RE.search(hwid)
            if m:
                groups = [g for g in m.groups() if g]
                vid, pid = int(groups[0], 16), int(groups[1], 16)

        def text(name: str) -> str | None:
            value = getattr(info, name, None)
            value = str(value).strip() if value is not None else None
            return value if value and value.lower() != "n/a" else None

        return cls(device=str(info.device), vid=vid, pid=pid,
                   serial_number=text("serial_number"), manufacturer=text("manufacturer"),
                   product=text("product"), description=text("description"),
                   interface=text("interface"), location=text("location"), hwid=text("hwid"))

    @property
    def is_usb(self) -> bool:
        return self.vid is not None or bool(self.product or self.manufacturer)

    @property
    def usb_id(self) -> str | None:
        return None if self.vid is None or self.pid is None else f"{self.vid:04x}:{self.pid:04x}"


@dataclass(frozen=True)
class Candidate:
    board: Board
    confidence: float
    mode: str  # "app" | "bootloader" | "unknown"
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {"board": self.board.id, "name": self.board.name, "kind": self.board.kind,
                "confidence": round(self.confidence, 3), "mode": self.mode,
                "reason": self.reason}


def _matches(patterns: Iterable[str], *values: str | None) -> bool:
    for value in values:
        if not value:
            continue
        low = value.lower()
        if any(fnmatch.fnmatchcase(low, p.lower()) for p in patterns):
            return True
    return False


def _string_hit(board: Board, record: PortRecord) -> bool:
    return (_matches(board.match_product, record.product, record.description, record.interface)
            or _matches(board.match_manufacturer, record.manufacturer))


def _mode_of(entries: list[UsbId]) -> str:
    modes = {u.mode for u in entries}
    if modes == {"app"}:
        return "app"
    if modes == {"bootloader"}:
        return "bootloader"
    return "unknown"


def identify(record: PortRecord, registry: Iterable[Board]) -> list[Candidate]:
    """Registry boards that could be on ``record``'s port, most likely first."""
    boards = [b for b in registry if not b.is_virtual]
    if record.vid is not None and record.pid is not None:
        return _by_usb_id(record, boards)
    return _by_strings(record, boards)


def _by_usb_id(record: PortRecord, boards: list[Board]) -> list[Candidate]:
    hits: dict[str, tuple[Board, list[UsbId]]] = {}
    for board in boards:
        entries = [u for u in board.usb if u.vid == record.vid and u.pid == record.pid
                   and u.serial_port]
        if entries:
            hits[board.id] = (board, entries)
    direct = [b for b, entries in hits.values()
              if not b.is_bridge and not all(u.bridge for u in entries)]
    string_hits = [b for b, _ in hits.values() if _string_hit(b, record)]
    out: list[Candidate] = []
    for board, entries in hits.values():
        if board.is_bridge:
            conf, why = 0.5, f"USB id {record.usb_id} is a {board.vendor} bridge"
        elif all(u.bridge for u in entries):
            conf, why = 0.3, f"USB id {record.usb_id} is a bridge this board uses"
        else:
            conf = 0.5 + 0.45 / len(direct)
            why = (f"USB id {record.usb_id} is this board's" if len(direct) == 1 else
                   f"USB id {record.usb_id} is shared by {len(direct)} boards")
        if board in string_hits:
            conf += 0.25 / len(string_hits)
            why += "; USB strings match"
        elif record.product and board.match_product:
            conf -= 0.15
            why += f"; product {record.product!r} is not this board's"
        out.append(Candidate(board, max(0.05, min(conf, 0.99)), _mode_of(entries), why))
    return _ranked(out)


def _by_strings(record: PortRecord, boards: list[Board]) -> list[Candidate]:
    matched = [b for b in boards if _string_hit(b, record)]
    out = []
    for board in matched:
        both = (_matches(board.match_product, record.product, record.description)
                and _matches(board.match_manufacturer, record.manufacturer))
        conf = 0.3 + 0.2 / len(matched) + (0.05 if both else 0.0)
        modes = [u for u in board.usb if u.serial_port]
        mode = _mode_of(modes) if modes and _mode_of(modes) == "app" else "unknown"
        out.append(Candidate(board, conf, mode,
                             "no USB ids reported; matched by USB product/manufacturer strings"))
    return _ranked(out)


def _ranked(candidates: list[Candidate]) -> list[Candidate]:
    kind_order = {"board": 0, "bridge": 1, "virtual": 2}
    return sorted(candidates, key=lambda c: (-round(c.confidence, 6),
                                             kind_order.get(c.board.kind, 3), c.board.id))


@dataclass
class DetectedBoard:
    """One thing plugged in: a serial port, a UF2 bootloader drive, or a virtual board."""

    port: str
    source: str  # "serial" | "uf2" | "virtual"
    candidates: list[Candidate] = field(default_factory=list)
    mode: str = "unknown"
    serial_number: str | None = None
    vid: int | None = None
    pid: int | None = None
    manufacturer: str | None = None
    product: str | None = None
    location: str | None = None
    virtual: bool = False
    alias: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    probe: Any = None  # ProbeResult once probed

    @property
    def board(self) -> Board | None:
        return self.candidates[0].board if self.candidates else None

    @property
    def confidence(self) -> float:
        return self.candidates[0].confidence if self.candidates else 0.0

    @property
    def key(self) -> str:
        return f"{self.source}:{self.port}"

    @property
    def identity(self) -> tuple[Any, ...]:
        """Changes when a different device takes over the same port between two scans."""
        return (self.key, self.serial_number, self.vid, self.pid, self.mode)

    @property
    def backend(self) -> str | None:
        if self.virtual:
            return "virtual"
        if self.probe is not None and getattr(self.probe, "smp", False):
            return "smp"
        return self.board.backend if self.board else None

    @property
    def runtime_version(self) -> str | None:
        return getattr(self.probe, "runtime", None) if self.probe is not None else None

    @property
    def unknown_bridge(self) -> bool:
        return self.board is not None and self.board.is_bridge

    def to_dict(self) -> dict[str, Any]:
        board = self.board
        return {
            "port": self.port, "source": self.source,
            "board": board.id if board else None, "name": board.name if board else None,
            "confidence": round(self.confidence, 3), "mode": self.mode,
            "serial_number": self.serial_number,
            "usb_id": None if self.vid is None or self.pid is None
            else f"{self.vid:04x}:{self.pid:04x}",
            "manufacturer": self.manufacturer, "product": self.product,
            "location": self.location, "backend": self.backend, "virtual": self.virtual,
            "alias": self.alias, "runtime_version": self.runtime_version,
            "candidates": [c.to_dict() for c in self.candidates],
            "probe": self.probe.to_dict() if hasattr(self.probe, "to_dict") else None,
            **({"details": self.details} if self.details else {}),
        }


def overall_mode(candidates: list[Candidate]) -> str:
    """The mode the port is in, as far as the ids tell: the best candidates' agreed mode."""
    if not candidates:
        return "unknown"
    best = candidates[0].confidence
    modes = {c.mode for c in candidates if best - c.confidence < 1e-6}
    return modes.pop() if len(modes) == 1 else "unknown"


def detect_serial(records: Iterable[Any], registry: Iterable[Board], *,
                  include_all: bool = False) -> list[DetectedBoard]:
    """Detected boards for ``list_ports``-like records (non-USB ports skipped unless asked)."""
    boards = list(registry)
    out = []
    for info in records:
        record = info if isinstance(info, PortRecord) else PortRecord.from_port(info)
        if not record.is_usb and not include_all:
            continue
        candidates = identify(record, boards)
        out.append(DetectedBoard(
            port=record.device, source="serial", candidates=candidates,
            mode=overall_mode(candidates), serial_number=record.serial_number,
            vid=record.vid, pid=record.pid, manufacturer=record.manufacturer,
            product=record.product or record.description, location=record.location))
    return out
