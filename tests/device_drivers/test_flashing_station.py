"""Station mode orchestration with a simple in-test back end (no device): parallelism,
per-board status, failures isolated, cancel, records, on-plug events."""

from __future__ import annotations

import hashlib
import signal
import threading
import time
from collections.abc import Callable
from typing import ClassVar

import pytest

from device_drivers.errors import Cancelled, DeviceError
from device_drivers.flashing import Artifact, FlashOptions, FlashResult, flash
from device_drivers.flashing.base import check_cancel
from device_drivers.flashing.station import BoardJob, run_station, watch_and_flash
from fleet_ops.records import open_store
from fleet_ops.records.device_ops import record_flash

MODEL = b"\x1c\x00\x00\x00TFL3" + bytes(range(200)) * 20


class MemoryBackend:
    """Stores artifacts in a dict per port; takes ``blocks`` steps of ``step_s`` each."""

    name: ClassVar[str] = "memory"

    def __init__(self, blocks: int = 10, step_s: float = 0.02,
                 broken: frozenset[str] = frozenset()) -> None:
        self.blocks, self.step_s, self.broken = blocks, step_s, broken
        self.stored: dict[str, bytes] = {}
        self.active = 0
        self.max_active = 0
        self.saw_cancel: list[str] = []
        self._lock = threading.Lock()

    def flash(self, artifact, port, options, progress, cancel) -> FlashResult:
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for i in range(self.blocks):
                try:
                    check_cancel(cancel, "memory flash")
                except Cancelled:
                    with self._lock:
                        self.saw_cancel.append(port)
                    raise
                time.sleep(self.step_s)
                progress((i + 1) / self.blocks, f"block {i + 1}")
                if port in self.broken and i == self.blocks // 2:
                    raise DeviceError(f"{port}: link lost", "replug")
            self.stored[port] = artifact.data
            digest = hashlib.sha256(self.stored[port]).hexdigest()
            return FlashResult(ok=True, backend=self.name, port=port, artifact=artifact.name,
                               artifact_sha256=artifact.sha256, bytes=artifact.size,
                               duration_s=0.1, local_digest=artifact.sha256,
                               device_digest=digest, verified=digest == artifact.sha256)
        finally:
            with self._lock:
                self.active -= 1


def _one(backend: MemoryBackend, artifact: Artifact):
    return lambda port, progress, cancel: flash(artifact, port, backend=backend,
                                                options=FlashOptions(), progress=progress,
                                                cancel=cancel, recorder=record_flash)


def test_four_boards_flash_in_parallel_with_their_own_status() -> None:
    backend = MemoryBackend()
    art = Artifact.from_bytes(MODEL, "m.tflite")
    updates: list[tuple[str, str, float]] = []
    lock = threading.Lock()

    def on_update(job: BoardJob) -> None:
        with lock:
            updates.append((job.port, job.state, job.fraction))

    ports = [f"/dev/fake{i}" for i in range(4)]
    report = run_station(ports, _one(backend, art), on_update=on_update,
                         usb_serial_for=lambda p: "SN-" + p[-1])
    assert report.ok and len(report.passed) == 4
    assert backend.max_active == 4  # really in parallel
    assert set(backend.stored) == set(ports)
    for port in ports:
        mine = [u for u in updates if u[0] == port]
        assert mine[0][1] == "waiting" and mine[-1][1] == "ok"
        fractions = [f for _, s, f in mine if s == "flashing"]
        assert fractions == sorted(fractions)  # each board's own monotonic progress
    assert {j.usb_serial for j in report.jobs} == {"SN-0", "SN-1", "SN-2", "SN-3"}
    records = open_store().list()
    assert len(records) == 4 and {r.result for r in records} == {"ok"}


def test_one_broken_board_fails_alone() -> None:
    backend = MemoryBackend(broken=frozenset({"/dev/fake2"}))
    art = Artifact.from_bytes(MODEL, "m.tflite")
    report = run_station([f"/dev/fake{i}" for i in range(4)], _one(backend, art))
    assert not report.ok
    assert [j.port for j in report.failed] == ["/dev/fake2"]
    bad = report.failed[0]
    assert bad.state == "failed" and "link lost" in (bad.error or "")
    assert bad.result is not None and bad.result.ok is False
    assert len(report.passed) == 3
    results = {r.port: r.result for r in open_store().list()}
    assert results["/dev/fake2"] == "failed" and list(results.values()).count("ok") == 3


def test_cancel_stops_every_board() -> None:
    backend = MemoryBackend(blocks=2000, step_s=0.01)
    art = Artifact.from_bytes(MODEL, "m.tflite")
    cancel = threading.Event()
    _, on_update = _collect()
    set_at: list[float] = []
    _when(on_update, 3, cancel.set, set_at)
    report = run_station([f"/dev/fake{i}" for i in range(3)], _one(backend, art),
                         cancel=cancel, on_update=on_update)
    assert time.monotonic() - set_at[0] < 5.0
    assert {j.state for j in report.jobs} == {"cancelled"}
    assert not backend.stored
    assert {r.result for r in open_store().list()} == {"cancelled"}


class _Updates:
    """The station's ``on_update``: the latest state of each board, and a way to wait for
    a state (the station's own acknowledgement, never a sleep)."""

    def __init__(self) -> None:
        self.jobs: dict[str, BoardJob] = {}
        self._changed = threading.Condition()

    def __call__(self, job: BoardJob) -> None:
        with self._changed:
            self.jobs[job.port] = job
            self._changed.notify_all()

    def wait(self, predicate: Callable[[dict[str, BoardJob]], bool],
             timeout: float = 30.0) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: predicate(self.jobs), timeout), self.jobs


def _collect() -> tuple[dict[str, BoardJob], _Updates]:
    updates = _Updates()
    return updates.jobs, updates


def _all_flashing(n: int) -> Callable[[dict[str, BoardJob]], bool]:
    """``n`` boards past their first block: really running, not just submitted."""
    return lambda jobs: sum(j.state == "flashing" and j.fraction > 0
                            for j in jobs.values()) >= n


def _when(updates: _Updates, n: int, then: Callable[[], None], at: list[float]) -> None:
    """On a helper thread: once ``n`` boards are flashing, note the time and call ``then``."""
    def run() -> None:
        updates.wait(_all_flashing(n))
        at.append(time.monotonic())
        then()
    threading.Thread(target=run, daemon=True).start()


def test_ctrl_c_cancels_running_boards_instead_of_waiting_for_them() -> None:
    """A real SIGINT while the main thread waits: the jobs are told to stop at once (not
    after every board finished), and KeyboardInterrupt still reaches the caller."""
    backend = MemoryBackend(blocks=2000, step_s=0.01)  # 20 s per board if not cancelled
    art = Artifact.from_bytes(MODEL, "m.tflite")
    jobs, on_update = _collect()
    main = threading.main_thread().ident
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    killed: list[float] = []
    try:
        _when(on_update, 2, lambda: signal.pthread_kill(main, signal.SIGINT), killed)
        with pytest.raises(KeyboardInterrupt):
            run_station(["/dev/fake0", "/dev/fake1"], _one(backend, art),
                        on_update=on_update)  # type: ignore[arg-type]
        elapsed = time.monotonic() - killed[0]
    finally:
        signal.signal(signal.SIGINT, old)
    assert elapsed < 5.0  # stopped at the next block, not after the boards' 20 s
    assert backend.max_active == 2 and sorted(backend.saw_cancel) == ["/dev/fake0", "/dev/fake1"]
    assert {j.state for j in jobs.values()} == {"cancelled"} and not backend.stored
    assert all(0 < j.fraction < 0.5 for j in jobs.values())


def test_ctrl_c_while_waiting_for_plugs_cancels_the_running_jobs() -> None:
    backend = MemoryBackend(blocks=2000, step_s=0.01)
    art = Artifact.from_bytes(MODEL, "m.tflite")
    jobs, on_update = _collect()
    interrupted: list[float] = []

    def events():
        yield ("/dev/fake0", "A")
        yield ("/dev/fake1", "B")
        on_update.wait(_all_flashing(2))  # both boards running
        interrupted.append(time.monotonic())
        raise KeyboardInterrupt  # ^C while the watcher waits for the next board

    with pytest.raises(KeyboardInterrupt):
        watch_and_flash(events(), _one(backend, art), on_update=on_update)  # type: ignore[arg-type]
    assert time.monotonic() - interrupted[0] < 5.0  # not the boards' 20 s
    assert sorted(backend.saw_cancel) == ["/dev/fake0", "/dev/fake1"]
    assert {j.state for j in jobs.values()} == {"cancelled"}


def test_caller_token_set_from_another_thread_stops_slow_boards_quickly() -> None:
    backend = MemoryBackend(blocks=2000, step_s=0.01)
    art = Artifact.from_bytes(MODEL, "m.tflite")
    cancel = threading.Event()
    _, on_update = _collect()
    set_at: list[float] = []
    _when(on_update, 2, cancel.set, set_at)
    report = run_station(["/dev/fake0", "/dev/fake1"], _one(backend, art), cancel=cancel,
                         on_update=on_update)
    assert time.monotonic() - set_at[0] < 5.0
    assert sorted(backend.saw_cancel) == ["/dev/fake0", "/dev/fake1"]
    assert {j.state for j in report.jobs} == {"cancelled"}


def test_unverified_result_is_a_failure() -> None:
    class Liar(MemoryBackend):
        def flash(self, artifact, port, options, progress, cancel) -> FlashResult:
            result = super().flash(artifact, port, options, progress, cancel)
            result.device_digest, result.verified = None, False
            return result

    art = Artifact.from_bytes(MODEL, "m.tflite")
    report = run_station(["/dev/fake0"], _one(Liar(blocks=1), art))
    assert report.jobs[0].state == "failed" and "did not verify" in report.jobs[0].error


def test_on_plug_starts_a_job_per_new_board_and_skips_busy_duplicates() -> None:
    backend = MemoryBackend(blocks=5, step_s=0.02)
    art = Artifact.from_bytes(MODEL, "m.tflite")
    _, on_update = _collect()

    def events():
        yield ("/dev/fake0", "A")
        yield ("/dev/fake0", "A")  # re-announced while its job runs: ignored
        yield ("/dev/fake1", "B")
        on_update.wait(lambda jobs: jobs["/dev/fake0"].state == "ok")  # the station says so
        yield ("/dev/fake0", "A")  # replugged after its job finished: flashed again

    report = watch_and_flash(events(), _one(backend, art), on_update=on_update)
    assert [j.usb_serial for j in report.jobs] == ["A", "B", "A"]
    assert report.ok


def test_duplicate_ports_are_flashed_once() -> None:
    backend = MemoryBackend(blocks=1)
    art = Artifact.from_bytes(MODEL, "m.tflite")
    report = run_station(["/dev/x", "/dev/x"], _one(backend, art))
    assert len(report.jobs) == 1


@pytest.mark.parametrize("ports", [[]])
def test_no_ports_is_not_ok(ports) -> None:
    assert run_station(ports, lambda p, g, c: None).ok is False  # type: ignore[arg-type,return-value]
