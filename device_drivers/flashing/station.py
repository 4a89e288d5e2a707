"""Station mode: flash several boards at once, one worker thread and one status per board.

Each board's job has its own progress (tagged with its port and USB serial), its own
result and its own record; one board failing never stops the others. A shared cancel
token stops all of them within one block. ``watch_and_flash`` starts a job on every newly
plugged matching board (``--on-plug``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from device_drivers.errors import Cancelled, TinyOpsError
from device_drivers.flashing.base import CancelToken, FlashResult, Progress

log = logging.getLogger(__name__)

FlashOne = Callable[[str, Progress, CancelToken], FlashResult]
"""Flash the board on a port: (port, progress, cancel) → verified result, or raise."""


@dataclass
class BoardJob:
    port: str
    usb_serial: str | None = None
    state: str = "waiting"
    """``waiting``, ``flashing``, ``ok``, ``failed`` or ``cancelled``."""
    fraction: float = 0.0
    message: str = ""
    result: FlashResult | None = None
    error: str | None = None
    hint: str | None = None
    started: float | None = None
    finished: float | None = None

    @property
    def label(self) -> str:
        return f"{self.port} [{self.usb_serial}]" if self.usb_serial else self.port

    @property
    def done(self) -> bool:
        return self.state in ("ok", "failed", "cancelled")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"port": self.port, "usb_serial": self.usb_serial,
                               "state": self.state, "fraction": round(self.fraction, 4),
                               "message": self.message, "error": self.error,
                               "hint": self.hint}
        if self.result is not None:
            out["result"] = self.result.to_dict()
        return out


@dataclass
class StationReport:
    jobs: list[BoardJob] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def passed(self) -> list[BoardJob]:
        return [j for j in self.jobs if j.state == "ok"]

    @property
    def failed(self) -> list[BoardJob]:
        return [j for j in self.jobs if j.state != "ok"]

    @property
    def ok(self) -> bool:
        return bool(self.jobs) and not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "passed": len(self.passed), "failed": len(self.failed),
                "duration_s": round(self.duration_s, 3),
                "boards": [j.to_dict() for j in self.jobs]}


class _AnySet:
    """A cancel token set when the station's own event or the caller's token is set."""

    def __init__(self, own: threading.Event, caller: CancelToken | None) -> None:
        self._own, self._caller = own, caller

    def is_set(self) -> bool:
        return self._own.is_set() or (self._caller is not None and self._caller.is_set())


class Station:
    """Runs board jobs on a thread pool and reports every status change.

    ``cancel()`` (or the caller's token) stops every job within one block; jobs not yet
    started end as ``cancelled`` without touching their board.
    """

    def __init__(self, flash_one: FlashOne, *, on_update: Callable[[BoardJob], None] | None
                 = None, cancel: CancelToken | None = None, max_workers: int = 8,
                 usb_serial_for: Callable[[str], str | None] | None = None) -> None:
        self._flash_one = flash_one
        self._on_update = on_update
        self._stop = threading.Event()
        self._cancel = _AnySet(self._stop, cancel)
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="station")
        self._lock = threading.Lock()
        self._futures: list[Any] = []
        self._serial_for = usb_serial_for
        self.report = StationReport()
        self._started = time.monotonic()

    def submit(self, port: str, usb_serial: str | None = None) -> BoardJob:
        if usb_serial is None and self._serial_for is not None:
            usb_serial = self._serial_for(port)
        job = BoardJob(port=port, usb_serial=usb_serial)
        with self._lock:
            self.report.jobs.append(job)
        self._notify(job)
        self._futures.append(self._pool.submit(self._run, job))
        return job

    def _notify(self, job: BoardJob) -> None:
        if self._on_update is None:
            return
        try:
            self._on_update(job)
        except Exception:  # a display bug must not fail a flash
            log.exception("station display callback failed")

    def _run(self, job: BoardJob) -> None:
        job.state, job.started = "flashing", time.monotonic()
        self._notify(job)

        def progress(fraction: float, message: str) -> None:
            job.fraction, job.message = max(job.fraction, fraction), message
            self._notify(job)

        try:
            if self._cancel.is_set():
                raise Cancelled(f"{job.port}: cancelled before it started")
            job.result = self._flash_one(job.port, progress, self._cancel)
            job.state, job.fraction, job.message = "ok", 1.0, "verified"
            if job.result.usb_serial and not job.usb_serial:
                job.usb_serial = job.result.usb_serial
        except Cancelled as exc:
            job.state, job.error = "cancelled", exc.message
            job.result = getattr(exc, "result", None)
        except TinyOpsError as exc:
            job.state, job.error, job.hint = "failed", exc.message, exc.hint
            job.result = getattr(exc, "result", None)
        except Exception as exc:  # a bug on one board must not take the station down
            log.exception("station job on %s crashed", job.port)
            job.state, job.error = "failed", f"internal error: {exc!r}"
        finally:
            job.finished = time.monotonic()
            self._notify(job)

    def wait(self) -> StationReport:
        for future in list(self._futures):
            future.result()
        self.report.duration_s = time.monotonic() - self._started
        return self.report

    def cancel(self) -> None:
        """Ask every job to stop (they end within one block); does not wait."""
        self._stop.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def run_station(ports: Sequence[str], flash_one: FlashOne, *,
                on_update: Callable[[BoardJob], None] | None = None,
                cancel: CancelToken | None = None, max_workers: int | None = None,
                usb_serial_for: Callable[[str], str | None] | None = None) -> StationReport:
    """Flash every port in parallel; return when all are done (passed or failed)."""
    unique = list(dict.fromkeys(ports))
    station = Station(flash_one, on_update=on_update, cancel=cancel,
                      max_workers=max_workers or max(1, len(unique)),
                      usb_serial_for=usb_serial_for)
    try:
        for port in unique:
            station.submit(port)
        return station.wait()
    except BaseException:  # ^C or a failure here: stop the boards, do not wait them out
        station.cancel()
        raise
    finally:
        station.close()


def watch_and_flash(events: Iterable[tuple[str, str | None]], flash_one: FlashOne, *,
                    on_update: Callable[[BoardJob], None] | None = None,
                    cancel: CancelToken | None = None, limit: int | None = None,
                    max_workers: int = 8) -> StationReport:
    """Start a job for each ``(port, usb_serial)`` the plug-event iterable yields, until it
    ends, ``limit`` boards were started, or ``cancel`` is set. A board that is flashed and
    replugged is flashed again only after its previous job finished."""
    station = Station(flash_one, on_update=on_update, cancel=cancel, max_workers=max_workers)
    active: dict[str, BoardJob] = {}
    started = 0
    try:
        for port, serial_no in events:
            if station.cancelled:
                break
            key = serial_no or port
            if key in active and not active[key].done:
                continue
            active[key] = station.submit(port, serial_no)
            started += 1
            if limit is not None and started >= limit:
                break
        return station.wait()
    except BaseException:  # ^C (e.g. while waiting for a plug): stop the running jobs
        station.cancel()
        raise
    finally:
        station.close()
