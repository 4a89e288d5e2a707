"""Run the core's long jobs off the GUI thread.

The core's jobs are plain functions taking ``progress(fraction, message)`` and a cancel
token (``.is_set()``). :class:`JobRunner` runs them on a ``QThreadPool`` and turns the
callbacks into Qt signals delivered on the GUI thread. Workers never touch widgets, and
nothing is ever ``terminate()``d: cancel sets the token, the job stops between blocks.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from tinyops_base.errors import Cancelled

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress signals per second per job


@dataclass(frozen=True)
class JobError:
    """What the user sees when a job fails: the cause, the fix, and details for the log."""

    message: str
    hint: str | None = None
    kind: str = "Error"
    cancelled: bool = False
    expected: bool = True
    detail: str = ""

    def text(self) -> str:
        return self.message if not self.hint else f"{self.message}\nFix: {self.hint}"


def describe_error(exc: BaseException) -> JobError:
    """Readable form of an exception: the core's errors carry ``message`` and ``hint``."""
    kind = type(exc).__name__
    cancelled = isinstance(exc, (Cancelled, KeyboardInterrupt))
    message = getattr(exc, "message", None)
    hint = getattr(exc, "hint", None)
    expected = message is not None or hasattr(exc, "exit_code")
    if message is None:
        if isinstance(exc, FileNotFoundError):
            message = f"file not found: {exc.filename or exc}"
            hint, expected = "check the path and try again", True
        elif isinstance(exc, PermissionError):
            message = f"permission denied: {exc.filename or exc}"
            hint, expected = "check the file's permissions", True
        elif isinstance(exc, OSError):
            message, expected = str(exc) or kind, True
        else:
            message = f"{kind}: {exc}" if str(exc) else kind
            hint = hint or "this is a bug in TinyOps; the log file has the details"
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return JobError(str(message), hint, kind, cancelled, expected, detail)


class _Signals(QObject):
    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)
    finished = Signal()


class Job(QObject):
    """Handle of one submitted job; lives on the GUI thread. Connect before the job starts."""

    progress = Signal(float, str)
    succeeded = Signal(object)
    failed = Signal(object)  # JobError
    finished = Signal()  # after succeeded or failed

    def __init__(self, name: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.cancel_token = threading.Event()
        self.running = True
        self.result: Any = None
        self.error: JobError | None = None
        self.last_progress: tuple[float, str] = (0.0, "")

    def cancel(self) -> None:
        self.cancel_token.set()

    def _on_progress(self, fraction: float, message: str) -> None:
        self.last_progress = (fraction, message)
        self.progress.emit(fraction, message)

    def _on_succeeded(self, result: object) -> None:
        self.result = result
        self.succeeded.emit(result)

    def _on_failed(self, error: JobError) -> None:
        self.error = error
        self.failed.emit(error)

    def _on_finished(self) -> None:
        self.running = False
        self.finished.emit()


class _Task(QRunnable):
    def __init__(self, job: Job, signals: _Signals, fn: Callable[..., Any], args: tuple,
                 kwargs: dict, pass_context: bool) -> None:
        super().__init__()
        self.setAutoDelete(True)
        self._name = job.name
        self._cancel = job.cancel_token
        self._signals = signals
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._pass_context = pass_context
        self._last_emit = 0.0

    def _progress(self, fraction: float, message: str = "") -> None:
        # At most one signal per interval (messages often carry counters, so a changed
        # message is no reason to emit); the first and the final call always go through.
        now = time.monotonic()
        if fraction >= 1.0 or not self._last_emit or now - self._last_emit >= PROGRESS_INTERVAL_S:
            self._last_emit = now
            self._signals.progress.emit(float(fraction), str(message))

    def run(self) -> None:
        threading.current_thread().name = f"job:{self._name}"
        try:
            kwargs = dict(self._kwargs)
            if self._pass_context:
                kwargs.setdefault("progress", self._progress)
                kwargs.setdefault("cancel", self._cancel)
            result = self._fn(*self._args, **kwargs)
        except BaseException as exc:
            err = describe_error(exc)
            if err.expected or err.cancelled:
                log.info("job %s failed: %s", self._name, err.message)
            else:
                log.error("job %s crashed\n%s", self._name, err.detail)
            self._signals.failed.emit(err)
        else:
            self._signals.succeeded.emit(result)
        finally:
            self._signals.finished.emit()


class JobRunner(QObject):
    """Submits jobs to its own thread pool and keeps their handles until they finish."""

    job_started = Signal(object)
    job_finished = Signal(object)

    def __init__(self, parent: QObject | None = None, max_threads: int = 4) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._jobs: list[Job] = []
        self._signals: dict[int, _Signals] = {}

    @property
    def active(self) -> list[Job]:
        return [j for j in self._jobs if j.running]

    def submit(self, fn: Callable[..., Any], *args: Any, name: str | None = None,
               pass_context: bool = True, **kwargs: Any) -> Job:
        """Run ``fn(*args, progress=…, cancel=…, **kwargs)`` on a pool thread.

        With ``pass_context=False`` the function is called with its own arguments only.
        The returned :class:`Job` emits on the GUI thread; connect to it right away (the
        signals are queued, so nothing is missed even if the job ends first).
        """
        job = Job(name or getattr(fn, "__name__", "job"), self)
        signals = _Signals()  # created on the GUI thread: emits are queued to it
        signals.progress.connect(job._on_progress)
        signals.succeeded.connect(job._on_succeeded)
        signals.failed.connect(job._on_failed)
        signals.finished.connect(job._on_finished)
        # bound methods of QObjects (not lambdas): Qt drops these connections by itself
        # when the runner or the job is deleted before a queued signal arrives
        job.finished.connect(self._job_done)
        self._jobs.append(job)
        self._signals[id(job)] = signals
        self.job_started.emit(job)
        self.pool.start(_Task(job, signals, fn, args, kwargs, pass_context))
        return job

    def _job_done(self) -> None:
        job = self.sender()
        if isinstance(job, Job):
            self._forget(job)

    def _forget(self, job: Job) -> None:
        self._signals.pop(id(job), None)
        if job in self._jobs:
            self._jobs.remove(job)
        self.job_finished.emit(job)
        job.setParent(None)  # owned by whoever still holds the handle, then collected

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait for the threads; True if all ended in time."""
        self.cancel_all()
        done = self.pool.waitForDone(timeout_ms)
        if not done:
            log.warning("jobs still running at exit: %s", [j.name for j in self.active])
        return done
