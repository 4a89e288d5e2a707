"""Hot-plug watcher: a fake enumerator, announcement files with a real pty, a real sim."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time

from device_drivers import paths
from device_drivers.boards import BoardWatcher, DetectedBoard, load_registry, scan, watch
from device_drivers.boards.watcher import diff


def board(port: str, serial: str | None = "S1", mode: str = "app") -> DetectedBoard:
    return DetectedBoard(port=port, source="serial", serial_number=serial, vid=0x2341,
                         pid=0x805A, mode=mode)


class FakeEnumerator:
    """What is 'plugged in' right now; tests edit ``present``."""

    def __init__(self) -> None:
        self.present: list[DetectedBoard] = []
        self.fail_next = False
        self.calls = 0

    def __call__(self) -> list[DetectedBoard]:
        self.calls += 1
        if self.fail_next:
            self.fail_next = False
            raise OSError("udev hiccup")
        return list(self.present)


def next_event(events: queue.Queue, timeout: float = 2.0):
    return events.get(timeout=timeout)


def test_diff_reports_added_removed_and_replaced() -> None:
    a, b = board("/dev/ttyACM0"), board("/dev/ttyACM1", "S2")
    before = {a.key: a, b.key: b}
    replaced = board("/dev/ttyACM0", "S9")  # another board took ACM0 between two polls
    after = {replaced.key: replaced}
    events = diff(before, after, 1.0)
    assert [(e.kind, e.board.port, e.board.serial_number) for e in events] == [
        ("removed", "/dev/ttyACM0", "S1"), ("removed", "/dev/ttyACM1", "S2"),
        ("added", "/dev/ttyACM0", "S9")]
    assert diff(after, after, 2.0) == []
    # The same board rebooting into its bootloader on the same port is a change too.
    boot = board("/dev/ttyACM0", "S9", mode="bootloader")
    assert [e.kind for e in diff(after, {boot.key: boot}, 3.0)] == ["removed", "added"]


def test_watcher_thread_with_fake_enumerator() -> None:
    fake = FakeEnumerator()
    fake.present = [board("/dev/ttyACM0")]
    events: queue.Queue = queue.Queue()
    watcher = BoardWatcher(events.put, interval_s=0.02, enumerate_boards=fake)
    with watcher:
        first = next_event(events)
        assert (first.kind, first.board.port) == ("added", "/dev/ttyACM0")
        fake.present.append(board("/dev/ttyACM1", "S2"))
        added = next_event(events)
        assert (added.kind, added.board.serial_number) == ("added", "S2")
        fake.fail_next = True  # a failed enumeration is skipped, not fatal
        fake.present = fake.present[1:]
        removed = next_event(events)
        assert (removed.kind, removed.board.port) == ("removed", "/dev/ttyACM0")
        assert watcher.running
    assert not watcher.running
    calls = fake.calls
    time.sleep(0.1)
    assert fake.calls == calls  # stopped means stopped
    assert events.empty()


def test_callback_errors_do_not_stop_the_watcher() -> None:
    fake = FakeEnumerator()
    seen: list[str] = []

    def callback(event) -> None:
        seen.append(event.board.port)
        if len(seen) == 1:
            raise RuntimeError("GUI bug")

    with BoardWatcher(callback, interval_s=0.02, enumerate_boards=fake):
        fake.present = [board("/dev/ttyACM0")]
        deadline = time.monotonic() + 2
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        fake.present = [board("/dev/ttyACM0"), board("/dev/ttyACM1", "S2")]
        while len(seen) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert seen == ["/dev/ttyACM0", "/dev/ttyACM1"]


def test_generator_api_yields_initial_then_changes() -> None:
    fake = FakeEnumerator()
    fake.present = [board("/dev/ttyACM0")]
    stop = threading.Event()
    gen = watch(0.02, stop, fake)
    assert next(gen).kind == "added"
    fake.present = []
    assert next(gen).kind == "removed"
    stop.set()
    assert list(gen) == []


def _virtual_only():
    registry = load_registry()
    return lambda: scan(registry, ports=[], uf2_roots=[])


def _wait_for(events: queue.Queue, kind: str, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = events.get(timeout=max(0.01, deadline - time.monotonic()))
        if event.kind == kind:
            return event, time.monotonic()
    raise AssertionError(f"no {kind} event")


def test_announcement_file_with_live_pid_and_real_pty(pty_path: str) -> None:
    events: queue.Queue = queue.Queue()
    path = paths.virtual_boards_dir() / f"{os.getpid()}.json"
    with BoardWatcher(events.put, enumerate_boards=_virtual_only()):
        t0 = time.monotonic()
        path.write_text(json.dumps({"port": pty_path, "board": "pico", "pid": os.getpid(),
                                    "started": "2026-01-01T00:00:00+00:00", "virtual": True}))
        added, t1 = _wait_for(events, "added")
        assert added.board.port == pty_path and added.board.virtual
        assert added.board.board.id == "pico" and added.board.backend == "virtual"
        t2 = time.monotonic()
        path.unlink()
        removed, t3 = _wait_for(events, "removed")
        assert removed.board.port == pty_path
    assert t1 - t0 < 1.0 and t3 - t2 < 1.0
    print(f"announcement latency: added {1000 * (t1 - t0):.0f} ms, "
          f"removed {1000 * (t3 - t2):.0f} ms")


def test_stale_announcements_are_ignored(pty_path: str) -> None:
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead_pid = int(proc.stdout)
    folder = paths.virtual_boards_dir()
    (folder / f"{dead_pid}.json").write_text(json.dumps(
        {"port": pty_path, "board": "virtual", "pid": dead_pid, "virtual": True}))
    (folder / "garbage.json").write_text("{not json")
    (folder / "gone.json").write_text(json.dumps(
        {"port": "/dev/pts/99999", "board": "virtual", "pid": os.getpid(), "virtual": True}))
    assert scan(load_registry(), ports=[], uf2_roots=[]) == []


class BoardClock:
    """Notes (5 ms resolution) when a virtual board announces itself and when it is gone
    (announcement removed or its pty closed, whichever comes first)."""

    def __init__(self, folder) -> None:
        self.folder = folder
        self.port: str | None = None
        self.appeared: float | None = None
        self.vanished: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _check(self) -> None:
        present = any(self.folder.glob("*.json"))
        if present and self.port and not os.path.exists(self.port):
            present = False
        if present and self.appeared is None:
            self.appeared = time.time()
        if not present and self.appeared is not None and self.vanished is None:
            self.vanished = time.time()

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self._check()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._check()  # if this thread was starved, the latency only comes out larger


def test_real_virtual_board_appears_and_disappears(tmp_path) -> None:
    from device_drivers.virtual.board import VirtualBoard

    events: queue.Queue = queue.Queue()
    clock = BoardClock(paths.virtual_boards_dir())
    try:
        with BoardWatcher(events.put, enumerate_boards=_virtual_only()):
            sim = VirtualBoard("nano33ble", state_dir=tmp_path, default_model=False)
            port = sim.start()
            clock.port = port
            try:
                added, _ = _wait_for(events, "added", timeout=5.0)
                assert added.board.port == port
                assert added.board.board.id == "nano33ble" and added.board.virtual
            finally:
                sim.stop()
            removed, _ = _wait_for(events, "removed", timeout=5.0)
            assert removed.board.port == port
    finally:
        clock.close()
    assert clock.appeared is not None and clock.vanished is not None
    added_ms = 1000 * (added.t - clock.appeared)
    removed_ms = 1000 * (removed.t - clock.vanished)
    assert added_ms < 1000, "added later than 1 s after the board announced itself"
    assert removed_ms < 1000, "removed later than 1 s after the announcement went away"
    print(f"virtual board latency: added {added_ms:.0f} ms, removed {removed_ms:.0f} ms")
