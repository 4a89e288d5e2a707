"""Hot-plug: added/removed events by polling the enumerator (ports + UF2 drives + virtual).

Polling every 0.2 s keeps events well inside the 1 s budget on every OS with no extra
dependency (pyudev would only help Linux). Two APIs over the same diff:

- ``BoardWatcher(callback).start()`` / ``.stop()``: a daemon thread for the GUI; the callback
  runs on that thread (the GUI turns it into a signal).
- ``watch()``: a generator of events for the CLI.

The enumerator is injectable (any callable returning ``DetectedBoard`` objects), so tests
drive it with a fake one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from device_drivers.boards.detect import DetectedBoard

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 0.2
Enumerator = Callable[[], Sequence[DetectedBoard]]


@dataclass(frozen=True)
class BoardEvent:
    kind: str  # "added" | "removed"
    board: DetectedBoard
    t: float  # time.time() when the change was seen

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.kind, "t": round(self.t, 3), **self.board.to_dict()}


def _default_enumerator() -> Enumerator:
    from device_drivers.boards.registry import load_registry
    from device_drivers.boards.scan import scan

    registry = load_registry()
    return lambda: scan(registry)


def diff(before: dict[str, DetectedBoard], after: dict[str, DetectedBoard],
         t: float) -> list[BoardEvent]:
    """Events turning ``before`` into ``after`` (both keyed by ``DetectedBoard.key``).

    A port that now holds a different device (other serial number, ids or mode, e.g. a
    board that rebooted into its bootloader) is reported as removed then added.
    """
    events = []
    for key, old in before.items():
        new = after.get(key)
        if new is None or new.identity != old.identity:
            events.append(BoardEvent("removed", old, t))
    for key, new in after.items():
        was = before.get(key)
        if was is None or new.identity != was.identity:
            events.append(BoardEvent("added", new, t))
    return events


def _snapshot(enumerate_boards: Enumerator) -> dict[str, DetectedBoard]:
    return {b.key: b for b in enumerate_boards()}


def watch(interval_s: float = DEFAULT_INTERVAL_S, stop: threading.Event | None = None,
          enumerate_boards: Enumerator | None = None, *,
          initial: bool = True) -> Iterator[BoardEvent]:
    """Yield events until ``stop`` is set; with ``initial``, first one "added" per board."""
    enumerate_boards = enumerate_boards or _default_enumerator()
    stop = stop or threading.Event()
    current = _snapshot(enumerate_boards)
    if initial:
        now = time.time()
        for board in current.values():
            yield BoardEvent("added", board, now)
    yield from _poll(current, interval_s, stop, enumerate_boards)


def _poll(current: dict[str, DetectedBoard], interval_s: float, stop: threading.Event,
          enumerate_boards: Enumerator) -> Iterator[BoardEvent]:
    while not stop.wait(interval_s):
        try:
            latest = _snapshot(enumerate_boards)
        except Exception:  # a flaky enumeration must not end the watch
            log.warning("board enumeration failed; retrying", exc_info=True)
            continue
        yield from diff(current, latest, time.time())
        current = latest


class BoardWatcher:
    """Calls ``callback(event)`` on a background thread for every added/removed board.

    ``start()`` returns once the first snapshot is taken, so any change after it is an event.
    """

    def __init__(self, callback: Callable[[BoardEvent], None], *,
                 interval_s: float = DEFAULT_INTERVAL_S,
                 enumerate_boards: Enumerator | None = None, initial: bool = True) -> None:
        self._callback = callback
        self._interval_s = interval_s
        self._enumerate = enumerate_boards
        self._initial = initial
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> BoardWatcher:
        if self.running:
            return self
        self._stop.clear()
        self._ready.clear()
        self._thread = threading.Thread(target=self._run, name="board-watcher", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=10.0)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> BoardWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _emit(self, event: BoardEvent) -> None:
        try:
            self._callback(event)
        except Exception:
            log.exception("board watcher callback failed")

    def _run(self) -> None:
        try:
            enumerate_boards = self._enumerate or _default_enumerator()
            current = _snapshot(enumerate_boards)
        except Exception:
            log.exception("board watcher could not enumerate boards")
            self._ready.set()
            return
        self._ready.set()
        if self._initial:
            now = time.time()
            for board in current.values():
                self._emit(BoardEvent("added", board, now))
        for event in _poll(current, self._interval_s, self._stop, enumerate_boards):
            self._emit(event)
