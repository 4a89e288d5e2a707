"""UF2 bootloader drives: found by the ``INFO_UF2.TXT`` file every UF2 bootloader serves.

A board in UF2 bootloader mode shows up as a small USB drive (RPI-RP2, FTHRSNSBOOT, ...)
rather than, or besides, a serial port. ``INFO_UF2.TXT`` names it::

    UF2 Bootloader v3.0
    Model: Raspberry Pi RP2
    Board-ID: RPI-RP2

Search roots: ``/media/*``, ``/media/*/*``, ``/run/media/*/*`` (Linux), ``/Volumes/*``
(macOS) and drive letters (Windows); tests pass their own.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import string
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_drivers.boards.detect import Candidate, DetectedBoard
from device_drivers.boards.registry import Board

log = logging.getLogger(__name__)

INFO_FILE = "INFO_UF2.TXT"
MAX_INFO_BYTES = 4096


@dataclass(frozen=True)
class Uf2Info:
    path: str
    banner: str | None = None
    model: str | None = None
    board_id: str | None = None
    family: int | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "banner": self.banner, "model": self.model,
                "board_id": self.board_id,
                "family": None if self.family is None else f"0x{self.family:08x}",
                "fields": dict(self.fields)}


def parse_info_uf2(text: str) -> dict[str, str]:
    """``Key: value`` lines of INFO_UF2.TXT (first occurrence wins); the first line without a
    colon-separated key is returned as ``banner``. Never raises on odd input."""
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip().strip("\x00")
        if not line:
            continue
        key, sep, value = line.partition(":")
        key = key.strip()
        if sep and key and " " not in key.strip("-") and len(key) <= 40:
            fields.setdefault(key, value.strip())
        elif "banner" not in fields:
            fields["banner"] = line
    return fields


def _family(fields: dict[str, str]) -> int | None:
    for key, value in fields.items():
        if key.lower().replace("_", "-") in ("family-id", "family", "familyid"):
            token = value.split()[0] if value.split() else ""
            try:
                return int(token, 16)  # accepts "0xe48bff56" and "e48bff56"
            except ValueError:
                return None
    return None


def read_info(drive: str | os.PathLike[str]) -> Uf2Info | None:
    """The drive's UF2 info, or None if it has no readable INFO_UF2.TXT."""
    path = Path(drive) / INFO_FILE
    try:
        with open(path, "rb") as fh:
            text = fh.read(MAX_INFO_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    fields = parse_info_uf2(text)
    banner = fields.get("banner")
    if banner is None and not fields:
        return None
    lowered = {k.lower(): v for k, v in fields.items()}
    return Uf2Info(path=str(Path(drive)), banner=banner, model=lowered.get("model"),
                   board_id=lowered.get("board-id"), family=_family(fields), fields=fields)


def default_roots() -> list[str]:
    """Glob patterns (or drive roots on Windows) where removable volumes are mounted."""
    if sys.platform.startswith("win"):
        return [f"{letter}:\\" for letter in string.ascii_uppercase[2:]]
    if sys.platform == "darwin":
        return ["/Volumes/*"]
    return ["/media/*", "/media/*/*", "/run/media/*/*"]


def find_uf2_drives(roots: Sequence[str] | None = None) -> list[Uf2Info]:
    """UF2 bootloader drives mounted under ``roots`` (glob patterns or plain directories)."""
    seen: set[str] = set()
    found: list[Uf2Info] = []
    for pattern in roots if roots is not None else default_roots():
        candidates = glob.glob(pattern) if any(c in pattern for c in "*?[") else [pattern]
        for drive in sorted(candidates):
            real = os.path.realpath(drive)
            if real in seen or not os.path.isfile(os.path.join(drive, INFO_FILE)):
                continue
            seen.add(real)
            info = read_info(drive)
            if info is not None:
                found.append(info)
    return found


def identify_uf2(info: Uf2Info, registry: Iterable[Board]) -> list[Candidate]:
    """Boards whose UF2 bootloader writes this Board-ID (and family, when the file has one)."""
    boards = [b for b in registry if b.backend == "uf2" or b.uf2_board_ids]
    if info.family is not None:
        boards = [b for b in boards if b.uf2_family in (None, info.family)]
    by_id = [b for b in boards if info.board_id and any(
        fnmatch.fnmatchcase(info.board_id.lower(), p.lower()) for p in b.uf2_board_ids)]
    if by_id:
        conf = 0.5 + 0.45 / len(by_id)
        why = (f"UF2 Board-ID {info.board_id!r}" +
               ("" if len(by_id) == 1 else f" is shared by {len(by_id)} boards"))
        return sorted((Candidate(b, conf, "bootloader", why) for b in by_id),
                      key=lambda c: c.board.id)
    if info.family is not None:
        fam = [b for b in boards if b.uf2_family == info.family]
        return sorted((Candidate(b, 0.3, "bootloader", f"UF2 family 0x{info.family:08x}")
                       for b in fam), key=lambda c: c.board.id)
    return []


def detect_uf2(infos: Iterable[Uf2Info], registry: Iterable[Board]) -> list[DetectedBoard]:
    boards = list(registry)
    out = []
    for info in infos:
        candidates = identify_uf2(info, boards)
        out.append(DetectedBoard(port=info.path, source="uf2", candidates=candidates,
                                 mode="bootloader", product=info.model,
                                 details={"uf2": info.to_dict()}))
    return out
