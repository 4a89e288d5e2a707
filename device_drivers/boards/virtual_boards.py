"""Running virtual boards (``tinyops sim``), listed like hardware and marked virtual.

Each running board writes ``paths.virtual_boards_dir()/<pid>.json``::

    {"port": "/dev/pts/N" or "socket://127.0.0.1:PORT", "board": "<registry id>",
     "serial": "<the board's identity>", "pid": int, "started": "<iso time>", "virtual": true}

and removes it on a clean exit. Files whose process is gone (a crash) or whose pty no
longer exists are stale: they are ignored, never deleted here (the file is not ours).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from device_drivers import paths
from device_drivers.boards.detect import Candidate, DetectedBoard
from device_drivers.boards.registry import Board

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Announcement:
    path: str
    port: str
    board: str
    pid: int
    started: str | None = None
    serial: str | None = None


def pid_alive(pid: int) -> bool:
    """True if a process with ``pid`` exists (POSIX: signal 0; Windows: OpenProcess)."""
    if pid <= 0:
        return False
    if sys.platform.startswith("win"):  # pragma: no cover - exercised on Windows only
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        code = ctypes.c_ulong()
        ok = ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return bool(ok) and code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(path: Path) -> Announcement | None:
    try:
        data = json.loads(path.read_text("utf-8"))
        return Announcement(path=str(path), port=str(data["port"]), board=str(data["board"]),
                            pid=int(data["pid"]), started=data.get("started"),
                            serial=data.get("serial") if isinstance(data.get("serial"), str)
                            else None)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.debug("ignoring unreadable announcement %s: %s", path, exc)
        return None


def read_announcements(directory: str | os.PathLike[str] | None = None,
                       *, include_stale: bool = False) -> list[Announcement]:
    """Live announcements (or all readable ones with ``include_stale``), ordered by port."""
    folder = Path(directory) if directory is not None else paths.virtual_boards_dir()
    out = []
    for path in sorted(folder.glob("*.json")):
        ann = _parse(path)
        if ann is None:
            continue
        if include_stale or is_live(ann):
            out.append(ann)
    return sorted(out, key=lambda a: a.port)


def is_live(ann: Announcement) -> bool:
    if not pid_alive(ann.pid):
        return False
    return "://" in ann.port or os.path.exists(ann.port)


def stale_announcements(directory: str | os.PathLike[str] | None = None) -> list[Announcement]:
    return [a for a in read_announcements(directory, include_stale=True) if not is_live(a)]


def detect_virtual(announcements: Iterable[Announcement],
                   registry: Iterable[Board]) -> list[DetectedBoard]:
    boards = {b.id: b for b in registry}
    out = []
    for ann in announcements:
        board = boards.get(ann.board) or boards.get("virtual")
        candidates = []
        if board is not None:
            why = f"announced by tinyops sim (pid {ann.pid})"
            if ann.board not in boards:
                why += f"; unknown board id {ann.board!r}, shown as the generic virtual board"
            candidates.append(Candidate(board, 1.0, "app", why))
        details: dict[str, Any] = {"pid": ann.pid, "impersonates": ann.board}
        if ann.started:
            details["started"] = ann.started
        out.append(DetectedBoard(port=ann.port, source="virtual", candidates=candidates,
                                 mode="app", virtual=True, details=details,
                                 serial_number=ann.serial))
    return out
