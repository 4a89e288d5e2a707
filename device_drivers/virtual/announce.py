"""Running virtual boards announce themselves in ``paths.virtual_boards_dir()``.

One JSON file per board: ``<pid>.json``, or ``<pid>-<n>.json`` when several boards run
in one process, holding ``{"port", "board", "serial", "pid", "started", "virtual": true}``. It is
rewritten when the port changes (a re-plugged pty) and removed when the board stops;
readers ignore files whose pid is not alive.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

from device_drivers import paths

_lock = threading.Lock()
_in_use: set[int] = set()


class Announcer:
    def __init__(self) -> None:
        self._slot: int | None = None
        self.path: Path | None = None

    def write(self, info: dict[str, Any]) -> Path:
        if self._slot is None:
            with _lock:
                self._slot = next(i for i in itertools.count() if i not in _in_use)
                _in_use.add(self._slot)
        pid = os.getpid()
        name = f"{pid}.json" if self._slot == 0 else f"{pid}-{self._slot}.json"
        path = paths.virtual_boards_dir() / name
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info))
        os.replace(tmp, path)
        self.path = path
        return path

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None
        if self._slot is not None:
            with _lock:
                _in_use.discard(self._slot)
            self._slot = None
