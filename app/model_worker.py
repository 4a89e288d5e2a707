"""TensorFlow work in a child process, so the GUI process never holds TensorFlow.

:class:`ModelWorker` (used from the GUI's worker threads) starts ``python -m
app.model_worker`` on first use and sends it jobs: ``"module:function"`` plus arguments.
The child calls ``function(*args, progress=…, cancel=…, **kwargs)`` and streams progress,
then the result, back as pickles over its stdin/stdout pipes (it moves its own stdout to
stderr first, so TensorFlow's chatter cannot corrupt the stream). Cancel is a message; a
child that does not stop within ``CANCEL_GRACE_S`` is killed. The child stays up for
``IDLE_S`` after its last job (TensorFlow stays warm for the next one), then exits: the
GUI process keeps its idle size throughout, and the memory TensorFlow took goes back to
the system when the child ends.

No Qt here (the child must not load it either).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import queue
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from device_drivers.errors import Cancelled, TinyOpsError

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 5.0
IDLE_S = 300.0
TF_FIRST_LOAD = "loading TensorFlow (first time, ~10 s)"


class ModelJobError(TinyOpsError):
    """A job in the model worker failed; ``message``/``hint`` as the child described them."""


class ModelWorker:
    """One child process, one job at a time (callers queue on a lock)."""

    def __init__(self, idle_s: float = IDLE_S) -> None:
        self.idle_s = idle_s
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tx: Connection | None = None
        self._rx: Connection | None = None
        self._idle_timer: threading.Timer | None = None
        self._job_id = 0
        self._stopping = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def _start(self, progress: Callable[[float, str], None] | None) -> None:
        if progress:
            progress(0.0, "starting the model worker")
        # TensorFlow's C++ log (CUDA probing, oneDNN notes: ~80 lines a quantize) goes to
        # the worker's log file, not the user's terminal; nothing is lost
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"))
        errors: Any = None
        try:
            from device_drivers import paths

            folder = paths.log_dir()
            folder.mkdir(parents=True, exist_ok=True)
            errors = open(folder / "model-worker.log", "ab")  # noqa: SIM115 (the child's)
        except OSError as exc:
            log.debug("model worker log unavailable: %s", exc)
        try:
            self._proc = subprocess.Popen([sys.executable, "-m", "app.model_worker"],
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=errors, env=env)
        finally:
            if errors is not None:
                errors.close()  # the child has its own copy
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._tx = Connection(os.dup(self._proc.stdin.fileno()), readable=False)
        self._rx = Connection(os.dup(self._proc.stdout.fileno()), writable=False)
        self._proc.stdin.close()
        self._proc.stdout.close()
        log.info("model worker started (pid %s)", self._proc.pid)

    def call(self, target: str, *args: Any, progress: Callable[[float, str], None] | None = None,
             cancel: Any = None, **kwargs: Any) -> Any:
        """Run ``target`` ("module:function") in the child; returns its result or raises."""
        with self._lock:
            if self._idle_timer is not None:
                self._idle_timer.cancel()
            self._stopping = False
            if self.pid is None:
                self._close()
                self._start(progress)
            try:
                return self._run(target, args, kwargs, progress, cancel)
            finally:
                if self.pid is not None and self.idle_s > 0:
                    self._idle_timer = threading.Timer(self.idle_s, self.stop)
                    self._idle_timer.daemon = True
                    self._idle_timer.start()

    def _run(self, target: str, args: tuple, kwargs: dict, progress: Any, cancel: Any) -> Any:
        assert self._tx is not None and self._rx is not None
        self._job_id += 1
        job = self._job_id
        try:
            self._tx.send(("run", job, target, args, kwargs))
        except OSError:
            raise ModelJobError("the model worker could not be started",
                                "see the log file; try again") from None
        cancel_sent: float | None = None
        while True:
            if cancel is not None and cancel.is_set() and cancel_sent is None:
                cancel_sent = time.monotonic()
                with contextlib.suppress(OSError):
                    self._tx.send(("cancel", job))
            if cancel_sent is not None and time.monotonic() - cancel_sent > CANCEL_GRACE_S:
                self.stop()
                raise Cancelled("cancelled (the model worker was stopped)")
            try:
                ready = self._rx.poll(0.1)
                msg = self._rx.recv() if ready else None
            except (EOFError, OSError):
                code = self._proc.wait(2) if self._proc is not None else None
                self._close()
                if self._stopping or (cancel is not None and cancel.is_set()):
                    raise Cancelled("cancelled") from None
                raise ModelJobError(f"the model worker stopped unexpectedly (exit code {code})",
                                    "try again; if it happens again, the log file has the "
                                    "details") from None
            if msg is None:
                continue
            kind = msg[0]
            if kind == "progress" and progress is not None:
                progress(msg[1], msg[2])
            elif kind == "ok":
                return msg[1]
            elif kind == "error":
                _, _kind, message, hint, detail, cancelled, expected = msg
                if cancelled:
                    raise Cancelled(message or "cancelled")
                if not expected:
                    log.error("model worker job %s crashed\n%s", target, detail)
                    hint = hint or "this is a bug in TinyOps; the log file has the details"
                raise ModelJobError(message, hint)

    def stop(self) -> None:
        """End the child now (idle timeout, window closing). Safe from any thread."""
        self._stopping = True
        proc = self._proc
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(1.0)
        log.info("model worker stopped")

    def _close(self) -> None:
        for conn in (self._tx, self._rx):
            if conn is not None:
                with contextlib.suppress(OSError):
                    conn.close()
        self._tx = self._rx = None
        self._proc = None


# ---------------------------------------------------------------------- jobs
LAYERS_JOB = "app.model_worker:layers_job"


def layers_job(model: str, quantized: str | None = None, calib: str | None = None, *,
               progress: Any = None, cancel: Any = None) -> dict[str, Any]:
    """The per-layer report (``model_tools.layers.layers_report``), run in the child: with
    ``quantized`` and ``calib`` it holds each layer's int8-vs-float error (TensorFlow)."""
    from model_tools.layers import layers_report

    return layers_report(model, quantized=quantized or None, calib=calib or None,
                         progress=progress, cancel=cancel)


# ---------------------------------------------------------------------- the child
def _describe(exc: BaseException) -> tuple[str, str, str | None, str, bool, bool]:
    kind = type(exc).__name__
    cancelled = isinstance(exc, (Cancelled, KeyboardInterrupt))
    message = getattr(exc, "message", None)
    hint = getattr(exc, "hint", None)
    expected = message is not None
    if message is None:
        if isinstance(exc, OSError) and exc.strerror:
            name = f": {exc.filename}" if exc.filename else ""
            message, expected = f"{exc.strerror.lower()}{name}", True
        else:
            message = f"{kind}: {exc}" if str(exc) else kind
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return kind, str(message), hint, detail, cancelled, expected


class _Throttled:
    """The child's progress callback: at most 20 messages a second (the last always)."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        self.send, self.last = send, 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self.last >= 0.05:
            self.last = now
            self.send(("progress", float(fraction), str(message)))


def _serve() -> int:
    out_fd = os.dup(1)
    os.dup2(2, 1)  # print() and C-level stdout now go to stderr, never into the stream
    sys.stdout = sys.stderr
    tx = Connection(out_fd, readable=False)
    rx = Connection(os.dup(0), writable=False)
    jobs: queue.Queue[Any] = queue.Queue()
    cancel = threading.Event()
    current = [0]
    send_lock = threading.Lock()

    def send(msg: Any) -> None:
        with send_lock:
            tx.send(msg)

    def reader() -> None:
        while True:
            try:
                msg = rx.recv()
            except (EOFError, OSError):
                os._exit(0)  # the GUI went away: so do we
            if msg[0] == "cancel" and msg[1] == current[0]:
                cancel.set()
            elif msg[0] == "run":
                jobs.put(msg)

    threading.Thread(target=reader, name="model-worker-rx", daemon=True).start()
    while True:
        _, job, target, args, kwargs = jobs.get()
        current[0] = job
        cancel.clear()
        progress = _Throttled(send)

        try:
            module, name = target.split(":")
            fn = getattr(importlib.import_module(module), name)
            result = fn(*args, progress=progress, cancel=cancel, **kwargs)
        except BaseException as exc:
            send(("error", *_describe(exc)))
        else:
            send(("ok", result))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(_serve())
