"""TensorFlow work in a child process, so the GUI process never holds TensorFlow.

:class:`ModelWorker` (used from the GUI's worker threads) starts ``python -m
app.model_worker`` on first use and sends it jobs: ``"module:function"`` plus arguments.
The child calls ``function(*args, progress=…, cancel=…, **kwargs)`` and streams progress,
then the result, back over its stdout pipe.

The child loads users' Keras/SavedModel files, which TensorFlow executes: its replies are
treated as hostile. They travel in ``tinyops_base.wire``'s data-only format (JSON header
plus raw buffers: nothing is ever unpickled), size-limited (``MAX_REPLY``) and checked
field by field (``app.model_wire``); a reply that is not well formed stops the child and raises
``ModelJobError``. The child runs under resource limits (:class:`ModelWorkerLimits`, set
before TensorFlow loads). Its stderr (TensorFlow's and CUDA's start-up chatter, the
converter's log) goes to a temporary file, not the user's terminal; a crash logs its tail.

Cancel is a message; a child that does not stop within ``CANCEL_GRACE_S`` is killed. The
child stays up for ``IDLE_S`` after its last job (TensorFlow stays warm), then exits.

No Qt here (the child must not load it either).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import queue
import select
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from app.model_wire import MAX_TEXT, checked, pack, unpack
from device_drivers.errors import Cancelled, TinyOpsError
from tinyops_base import wire
from tinyops_base.errors import describe
from tinyops_base.limits import ChildLimits, set_limits
from tinyops_base.process import stop_process

log = logging.getLogger(__name__)

CANCEL_GRACE_S = 5.0
IDLE_S = 300.0
REPLY_S = 60.0
"""Once a reply has started, the rest of it must arrive within this time."""
MAX_REPLY = 256 << 20
"""Largest reply accepted (its raw buffers): reports, never models."""
TF_FIRST_LOAD = "loading TensorFlow (first time, ~10 s)"
_QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}


class ModelJobError(TinyOpsError):
    """A job in the model worker failed; ``message``/``hint`` as the child described them."""


@dataclass(frozen=True)
class ModelWorkerLimits(ChildLimits):
    """Resource limits of the model worker (0: unlimited). Defaults, overridden by
    ``TINYOPS_MODEL_MAX_AS_MB``, ``TINYOPS_MODEL_MAX_CPU_S``, ``TINYOPS_MODEL_MAX_FILE_MB``."""

    address_space: int = 8 << 30
    """``RLIMIT_AS``: TensorFlow maps ~2.6 GB quantizing the example model."""
    cpu_s: int = 3600
    """``RLIMIT_CPU`` over the child's life (it serves several jobs while warm)."""
    file_size: int = 2 << 30
    """``RLIMIT_FSIZE``: a converted model, a SavedModel's temporary files."""
    ENV: ClassVar[tuple[str, str, str]] = (
        "TINYOPS_MODEL_MAX_AS_MB", "TINYOPS_MODEL_MAX_CPU_S", "TINYOPS_MODEL_MAX_FILE_MB")


class ModelWorker:
    """One child process, one job at a time (callers queue on a lock)."""

    def __init__(self, idle_s: float = IDLE_S, *, limits: ModelWorkerLimits | None = None,
                 command: Sequence[str] | None = None, max_reply: int = MAX_REPLY) -> None:
        self.idle_s = idle_s
        self.limits = limits or ModelWorkerLimits.from_env()
        self.max_reply = max_reply
        self._command = list(command or [sys.executable, "-m", "app.model_worker"])
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
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
        if self._log is None:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - one per worker, kept
        self._log.seek(0)
        self._log.truncate()
        self._proc = subprocess.Popen([*self._command, *self.limits.argv()],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log, env=dict(os.environ, **_QUIET_TF))
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

    def _send(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write(wire.encode(pack(message)))
        self._proc.stdin.flush()

    def _run(self, target: str, args: tuple, kwargs: dict, progress: Any, cancel: Any) -> Any:
        self._job_id += 1
        job = self._job_id
        try:
            self._send({"kind": "run", "job": job, "target": target, "args": list(args),
                        "kwargs": kwargs})
        except OSError:
            raise ModelJobError("the model worker could not be started",
                                "see the log file; try again") from None
        cancel_sent: float | None = None
        while True:
            if cancel is not None and cancel.is_set() and cancel_sent is None:
                cancel_sent = time.monotonic()
                with contextlib.suppress(OSError, ValueError):
                    self._send({"kind": "cancel", "job": job})
            if cancel_sent is not None and time.monotonic() - cancel_sent > CANCEL_GRACE_S:
                self.stop()
                raise Cancelled("cancelled (the model worker was stopped)")
            msg = self._receive(job, cancel)
            if msg is None:
                continue
            if msg["kind"] == "progress":
                if progress is not None:
                    progress(float(msg["fraction"]), msg["message"])
            elif msg["kind"] == "ok":
                return msg["result"]
            else:
                if msg["cancelled"]:
                    raise Cancelled(msg["message"] or "cancelled")
                hint = msg["hint"]
                if not msg["expected"]:
                    log.error("model worker job %s crashed\n%s", target, msg["detail"])
                    hint = hint or "this is a bug in TinyOps; the log file has the details"
                raise ModelJobError(msg["message"], hint)

    def _receive(self, job: int, cancel: Any) -> dict[str, Any] | None:
        """The next checked reply, or None when none came within 0.1 s."""
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        try:
            if not select.select([fd], [], [], 0.1)[0]:
                return None
            raw = wire.read_message(wire.fd_reader(fd, time.monotonic() + REPLY_S),
                                    max_payload=self.max_reply)
            return checked(raw, job)
        except TimeoutError:
            problem = f"a reply did not finish within {REPLY_S:.0f} s"
        except (EOFError, OSError):
            code = None
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = proc.wait(2)
            stopping = self._stopping
            tail = self._end()
            if stopping or (cancel is not None and cancel.is_set()):
                raise Cancelled("cancelled") from None
            log.warning("model worker ended (exit code %s); its log ends:\n%s", code, tail)
            raise ModelJobError(f"the model worker stopped unexpectedly (exit code {code})",
                                "try again; if it happens again, the log file has the "
                                "details") from None
        except ValueError as exc:  # wire.WireError: nothing of the reply is used
            problem = str(exc)
        tail = self._end()
        log.warning("model worker sent an invalid reply (%s); its log ends:\n%s", problem, tail)
        raise ModelJobError(f"the model worker sent an invalid reply and was stopped: {problem}",
                            "do not trust this model file: loading it may attack TensorFlow")

    def _end(self) -> str:
        """Stop the child, close its pipes; the tail of its log."""
        tail = self.log_tail()
        self.stop()
        self._close()
        return tail

    def log_tail(self, limit: int = 4000) -> str:
        """The end of the child's stderr (TensorFlow's log), at most ``limit`` characters."""
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0, os.SEEK_END)
        size = self._log.tell()
        self._log.seek(max(0, size - limit))
        return self._log.read().decode("utf-8", "replace")

    def stop(self) -> None:
        """End the child now (idle timeout, window closing). Safe from any thread."""
        self._stopping = True
        proc = self._proc
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        if proc is None or proc.poll() is not None:
            return
        stop_process(proc, grace_s=1.0)
        log.info("model worker stopped")

    def _close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            for pipe in (proc.stdin, proc.stdout):
                with contextlib.suppress(OSError):
                    if pipe is not None:
                        pipe.close()


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
def _error_reply(job: int, exc: BaseException) -> dict[str, Any]:
    import traceback

    said = describe(exc)
    detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {"kind": "error", "job": job, "message": said.message, "hint": said.hint,
            "detail": detail[-MAX_TEXT // 2:], "cancelled": said.cancelled,
            "expected": said.expected}


def _quiet_tensorflow() -> None:
    """TensorFlow's Python-side log to errors only (its C++ side: ``TF_CPP_MIN_LOG_LEVEL``)."""
    with contextlib.suppress(Exception):
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _serve(argv: list[str]) -> int:
    set_limits(argv)  # first: before TensorFlow or any user file loads
    out = os.fdopen(os.dup(1), "wb")  # the reply pipe: nothing else may write into it
    os.dup2(2, 1)  # print() and C-level stdout now go to stderr, never into the stream
    sys.stdout = sys.stderr
    _quiet_tensorflow()
    read = wire.stream_reader(sys.stdin.buffer)
    jobs: queue.Queue[dict[str, Any]] = queue.Queue()
    cancel = threading.Event()
    current = [0]
    send_lock = threading.Lock()

    def send(msg: dict[str, Any]) -> None:
        data = wire.encode(pack(msg))
        with send_lock:
            out.write(data)
            out.flush()

    def reader() -> None:
        while True:
            try:
                msg = unpack(wire.read_message(read))
            except (EOFError, OSError, ValueError):
                os._exit(0)  # the GUI went away (or spoke nonsense): so do we
            if msg.get("kind") == "cancel" and msg.get("job") == current[0]:
                cancel.set()
            elif msg.get("kind") == "run":
                jobs.put(msg)

    threading.Thread(target=reader, name="model-worker-rx", daemon=True).start()
    while True:
        msg = jobs.get()
        job = current[0] = int(msg["job"])
        cancel.clear()
        last = [0.0]

        def progress(fraction: float, message: str = "", job: int = job,
                     last: list[float] = last) -> None:
            now = time.monotonic()  # at most 20 messages a second (the last always)
            if fraction >= 1.0 or now - last[0] >= 0.05:
                last[0] = now
                send({"kind": "progress", "job": job,
                      "fraction": min(1.0, max(0.0, float(fraction))), "message": str(message)})

        try:
            module, name = str(msg["target"]).split(":")
            fn = getattr(importlib.import_module(module), name)
            result = fn(*msg["args"], progress=progress, cancel=cancel, **msg["kwargs"])
            send({"kind": "ok", "job": job, "result": result})
        except BaseException as exc:
            send(_error_reply(job, exc))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    sys.exit(_serve(sys.argv[1:]))
