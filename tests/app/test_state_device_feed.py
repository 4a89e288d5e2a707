"""The device feed without Qt: its own thread runs the core's BoardWatcher, restarts it after
a failed first scan, reports through callbacks, and stops promptly."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass

from app.state.device_feed import DeviceFeed


@dataclass(frozen=True)
class Entry:
    port: str
    serial: str | None = None

    @property
    def key(self) -> str:
        return self.port

    @property
    def identity(self) -> tuple[str, str | None]:
        return (self.port, self.serial)


def test_boards_come_and_go_through_callbacks_off_the_callers_thread() -> None:
    plugged = [Entry("/dev/ttyACM0")]
    events: queue.Queue[tuple[str, object, str]] = queue.Queue()
    caller = threading.current_thread().name

    def note(kind: str):
        return lambda x: events.put((kind, x, threading.current_thread().name))

    feed = DeviceFeed(lambda: lambda: list(plugged), interval_s=0.02, on_added=note("added"),
                      on_removed=note("removed"), on_scanned=note("scanned"))
    feed.start()
    try:
        kind, items, thread = events.get(timeout=10)
        assert kind == "scanned" and items == [Entry("/dev/ttyACM0")] and thread != caller
        assert events.get(timeout=10)[:2] == ("added", Entry("/dev/ttyACM0"))
        plugged.append(Entry("/dev/ttyACM1", "E66138"))
        assert events.get(timeout=10)[:2] == ("added", Entry("/dev/ttyACM1", "E66138"))
        plugged.pop(0)
        assert events.get(timeout=10)[:2] == ("removed", "/dev/ttyACM0")
    finally:
        t0 = time.monotonic()
        assert feed.stop(5.0)
    assert time.monotonic() - t0 < 2.0 and not feed.running
    kinds = []
    while not events.empty():
        kinds.append(events.get()[0])
    assert "scanned" not in kinds  # once only


def test_a_failed_first_scan_is_reported_and_retried() -> None:
    calls = [0]
    failures: queue.Queue[str] = queue.Queue()
    added: queue.Queue[object] = queue.Queue()

    def flaky() -> list[Entry]:
        calls[0] += 1
        if calls[0] <= 2:
            raise OSError("udev is not ready")
        return [Entry("/dev/ttyACM0")]

    feed = DeviceFeed(lambda: flaky, interval_s=0.02, on_added=added.put,
                      on_scan_failed=failures.put)
    feed.start()
    try:
        assert "udev is not ready" in failures.get(timeout=10)
        assert added.get(timeout=10) == Entry("/dev/ttyACM0")
        assert calls[0] >= 3
    finally:
        assert feed.stop(5.0)


def test_an_enumerator_that_cannot_be_built_is_reported_and_ends_the_feed() -> None:
    failures: queue.Queue[str] = queue.Queue()

    def broken():
        raise ValueError("registry unreadable: boards.yaml line 3")

    feed = DeviceFeed(broken, on_scan_failed=failures.put)
    feed.start()
    assert "boards.yaml" in failures.get(timeout=10)
    assert feed.stop(5.0)
