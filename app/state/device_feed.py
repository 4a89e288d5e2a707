"""The connected boards as a feed of callbacks (no Qt): one plain thread that keeps the
core's hot-plug ``BoardWatcher`` running and reports what it sees.

``BoardWatcher`` polls an enumerator on its own thread and diffs; a failed first scan ends
it, so this feed's thread restarts it (every ``interval_s``) until :meth:`DeviceFeed.stop`.
Enumeration never runs on the caller's thread: USB enumeration and virtual-board files can
be slow, and the caller is the GUI. ``app.gui.devices.DeviceWatcher`` adapts the callbacks
to Qt signals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

Enumerator = Callable[[], Sequence[Any]]


def _ignore(*_: Any) -> None:
    return None


class DeviceFeed:
    """``on_added(entry)``, ``on_removed(port)``, ``on_scanned(entries)`` (once, after the
    first scan) and ``on_scan_failed(message)``, called on the feed's threads."""

    def __init__(self, make_enumerator: Callable[[], Enumerator], interval_s: float = 0.5, *,
                 on_added: Callable[[Any], Any] = _ignore,
                 on_removed: Callable[[str], Any] = _ignore,
                 on_scanned: Callable[[list[Any]], Any] = _ignore,
                 on_scan_failed: Callable[[str], Any] = _ignore) -> None:
        self.make_enumerator = make_enumerator
        self.interval_s = interval_s
        self.on_added, self.on_removed = on_added, on_removed
        self.on_scanned, self.on_scan_failed = on_scanned, on_scan_failed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="device-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 3.0) -> bool:
        """End the feed (and its watcher); True once its thread has ended within the time."""
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return not self.running

    def _counted(self, enumerate_fn: Enumerator) -> Enumerator:
        first = [True]

        def enumerate_entries() -> list[Any]:
            try:
                items = list(enumerate_fn())
            except Exception as exc:
                self.on_scan_failed(str(exc))
                raise
            if first[0]:
                first[0] = False
                self.on_scanned(items)
            return items

        return enumerate_entries

    def _on_event(self, event: Any) -> None:
        if event.kind == "added":
            self.on_added(event.board)
        elif event.kind == "removed":
            self.on_removed(event.board.port)

    def _run(self) -> None:
        from device_drivers.boards import BoardWatcher

        try:
            enumerate_fn = self.make_enumerator()
        except Exception as exc:  # the registry could not be read: say so, list nothing
            log.warning("device detection unavailable: %s", exc)
            self.on_scan_failed(str(exc))
            return
        watcher = BoardWatcher(self._on_event, interval_s=self.interval_s,
                               enumerate_boards=self._counted(enumerate_fn))
        try:
            while not self._stop.is_set():
                if not watcher.running:  # (re)start: only a failed first scan ends it
                    watcher.start()
                    if not watcher.running:  # that scan failed: try again a while later
                        self._stop.wait(max(0.05, self.interval_s))
                        continue
                self._stop.wait(self.interval_s)
        finally:
            watcher.stop()
