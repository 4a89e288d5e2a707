"""``hotplug_s``: a board appears → the watcher's event.

A ``BoardWatcher`` with the app's default enumerator (serial ports, UF2 drives, virtual-board
announcements, polled every 0.2 s) runs while a virtual board starts. The board "appears"
when its announcement file is written (its mtime); the figure is the time from then to the
watcher's "added" callback, median of repeats. The "removed" latency (board stopped →
event) is given beside it. Target ≤ 1 s (the hot-plug issue's budget).
"""

from __future__ import annotations

import json
import queue
import time

from benchmarks.common import BenchmarkError, Figure, median


def _announcement_mtime(port: str) -> float:
    from device_drivers import paths

    for path in paths.virtual_boards_dir().glob("*.json"):
        try:
            if json.loads(path.read_text()).get("port") == port:
                return path.stat().st_mtime
        except (OSError, ValueError):
            continue
    raise BenchmarkError(f"no announcement for {port}")


def _wait(events: queue.Queue, kind: str, port: str, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            event, seen = events.get(timeout=0.1)
        except queue.Empty:
            continue
        if event.kind == kind and event.board.port == port:
            return seen
    raise BenchmarkError(f"no {kind!r} event for {port} within {timeout:.0f} s")


def run(quick: bool) -> list[Figure]:
    from device_drivers.boards.watcher import BoardWatcher
    from device_drivers.virtual.board import VirtualBoard

    added, removed = [], []
    events: queue.Queue = queue.Queue()
    with BoardWatcher(lambda e: events.put((e, time.time())), initial=False):
        for _ in range(3 if quick else 6):
            board = VirtualBoard(board="nano33ble", default_model=False)
            port = board.start()
            try:
                appeared = _announcement_mtime(port)
                added.append(_wait(events, "added", port) - appeared)
            finally:
                board.stop()
                stopped = time.time()
            removed.append(_wait(events, "removed", port) - stopped)
    return [Figure(
        "hotplug_s", median(added), "s", 1.0, "<=",
        f"1 s budget (hot-plug issue); removal seen {median(removed):.2f} s after stop",
        f"BoardWatcher (default enumerator, 0.2 s poll) while a virtual board starts; from "
        f"its announcement file's mtime to the 'added' callback, median of {len(added)}: "
        + ", ".join(f"{a:.2f}" for a in added),
        samples=added, extra={"removed_s": [round(r, 3) for r in removed]})]
