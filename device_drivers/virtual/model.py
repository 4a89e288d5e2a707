"""The running model: an interpreter in a child process, swapped atomically.

:class:`ModelRunner` keeps the current :class:`WorkerProcess` (the running model) and a
warm spare (interpreter already imported). ``load`` builds the new model in the spare;
only when it parsed, allocated in the board's arena and ran once does the runner switch
to it. Any failure, including the child crashing, leaves the previous model running.

The child runs uploaded models, so it runs under resource limits (:class:`WorkerLimits`)
and its replies are data only, size-capped and checked (:mod:`.worker_wire`); a reply that
is not what the request asked for kills the child and fails the request (``BAD_MODEL``).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from device_drivers.virtual import worker_wire
from tinyops_base.limits import ChildLimits
from tinyops_base.wire import WireError, encode, fd_reader, read_message

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 30.0
INFER_TIMEOUT_S = 5.0


class ModelError(Exception):
    """A load or infer failed; ``code`` is a ``RUNTIME_ERR`` name."""

    def __init__(self, code: str, message: str, needed: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.needed = needed


@dataclass(frozen=True)
class WorkerLimits(ChildLimits):
    """Resource limits of the interpreter child (0: unlimited). From the environment:
    ``TINYOPS_SIM_MAX_AS_MB``, ``TINYOPS_SIM_MAX_CPU_S``, ``TINYOPS_SIM_MAX_FILE_MB``."""

    address_space: int = 4096 << 20
    """``RLIMIT_AS``: the interpreter (tflite-micro, or the tf.lite fallback) plus the
    largest arena a board has, with room to spare."""
    cpu_s: int = 0
    """``RLIMIT_CPU`` over the child's life: off by default, as a board streams for days;
    a hung request is killed by its own timeout (``LOAD_TIMEOUT_S``, ``INFER_TIMEOUT_S``)."""
    file_size: int = 64 << 20
    """``RLIMIT_FSIZE``: the child writes only TFLM's allocation report."""
    ENV: ClassVar[tuple[str, str, str]] = (
        "TINYOPS_SIM_MAX_AS_MB", "TINYOPS_SIM_MAX_CPU_S", "TINYOPS_SIM_MAX_FILE_MB")


class WorkerProcess:
    """One interpreter child process (``python -m device_drivers.virtual.worker``)."""

    def __init__(self, limits: WorkerLimits | None = None,
                 command: list[str] | None = None) -> None:
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        quiet = not log.isEnabledFor(logging.DEBUG)
        limits = limits or WorkerLimits.from_env()
        base = command or [sys.executable, "-m", "device_drivers.virtual.worker"]
        self._proc = subprocess.Popen(
            [*base, *limits.argv()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if quiet else None, env=env, close_fds=True,
            start_new_session=True,  # a Ctrl-C at the terminal is for the board, not for it
        )
        self._lock = threading.Lock()
        self.ready: dict[str, Any] | None = None
        self.backend = "?"

    @property
    def pid(self) -> int:
        return self._proc.pid

    def wait_ready(self, timeout: float = START_TIMEOUT_S) -> None:
        if self.ready is None:
            self.ready = self._read(timeout, worker_wire.check_ready)
            self.backend = str(self.ready["backend"])

    def _read(self, timeout: float, check: Callable[[dict[str, Any]], dict[str, Any]]
              ) -> dict[str, Any]:
        """One reply, read within ``timeout`` and accepted by ``check``; else the child is
        killed and the request fails."""
        deadline = time.monotonic() + timeout
        try:
            assert self._proc.stdout is not None
            reply = read_message(fd_reader(self._proc.stdout.fileno(), deadline),
                                 max_payload=worker_wire.MAX_REPLY)
            return check(reply)
        except TimeoutError:
            self.kill()
            raise ModelError("BAD_MODEL",
                             f"the interpreter did not answer within {timeout:g} s") from None
        except (EOFError, OSError):
            code = self._proc.wait(timeout=5)
            raise ModelError("BAD_MODEL", f"the interpreter crashed (exit {code})") from None
        except WireError as exc:
            self.kill()
            log.warning("interpreter process %s sent an invalid reply and was stopped: %s",
                        self._proc.pid, exc)
            raise ModelError("BAD_MODEL", f"the interpreter sent an invalid reply and was "
                             f"stopped: {exc}") from None

    def call(self, message: dict[str, Any], timeout: float,
             check: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self.wait_ready()
            assert self._proc.stdin is not None
            try:
                self._proc.stdin.write(encode(message))
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError):
                raise ModelError("BAD_MODEL", "the interpreter process is gone") from None
            return self._read(timeout, check)

    def alive(self) -> bool:
        return self._proc.poll() is None

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            log.warning("interpreter process %s did not exit", self._proc.pid)
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()

    def close(self) -> None:
        if self.ready is not None and self._proc.poll() is None and self._proc.stdin is not None:
            try:
                self._proc.stdin.write(encode({"op": "quit"}))
                self._proc.stdin.flush()
                self._proc.wait(timeout=2)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


@dataclass
class LoadedModel:
    data: bytes = field(repr=False)
    path: str
    labels: list[str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    arena_used: int
    backend: str
    sha256: bytes = b""

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = hashlib.sha256(self.data).digest()

    @property
    def size(self) -> int:
        return len(self.data)


class _IdlePool:
    """Warm interpreter processes that no board uses now, shared by the boards of this
    process: a board that stops hands its processes back, the next one takes them
    instead of paying for the interpreter import again."""

    MAX_IDLE = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[WorkerProcess] = []

    def take(self) -> WorkerProcess | None:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        return None

    def put(self, worker: WorkerProcess) -> None:
        with self._lock:
            if worker.alive() and len(self._idle) < self.MAX_IDLE:
                self._idle.append(worker)
                return
        worker.close()

    def close_all(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.close()


_IDLE = _IdlePool()
atexit.register(_IDLE.close_all)


class ModelRunner:
    """The model the board runs, with atomic replacement.

    Two interpreter processes take turns: the current one runs the model, the spare
    (already imported) builds the next one. After a switch the old current becomes the
    spare; after a refused load the spare stays the spare. Only a crash costs a new process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # guards current/worker swaps
        self._pool_lock = threading.Lock()
        self._pool: list[WorkerProcess] = []
        """Spare interpreter processes (one is kept; more only while starting)."""
        self.current: LoadedModel | None = None
        self._worker: WorkerProcess | None = None
        self._closed = False

    def warm_up(self, wait: bool = False, count: int = 1) -> None:
        """Make sure ``count`` spare interpreter processes exist (ready, with ``wait``)."""
        with self._pool_lock:
            if self._closed:
                return
            self._pool = [w for w in self._pool if w.alive()]
            while len(self._pool) < count:
                self._pool.append(_IDLE.take() or WorkerProcess())
            pool = list(self._pool)
        if wait:
            for worker in pool:
                try:
                    worker.wait_ready()
                except ModelError as exc:
                    log.warning("interpreter process does not start: %s", exc)

    def _warm_up_later(self) -> None:
        threading.Thread(target=self.warm_up, daemon=True, name="sim-spare").start()

    def _take_spare(self) -> WorkerProcess:
        with self._pool_lock:
            while self._pool:
                worker = self._pool.pop(0)
                if worker.alive():
                    return worker
                worker.kill()
        return _IDLE.take() or WorkerProcess()

    def _give_back(self, worker: WorkerProcess) -> None:
        """Keep a live worker as the spare (or hand it to the shared idle pool)."""
        with self._pool_lock:
            if not self._closed and not self._pool and worker.alive():
                self._pool.append(worker)
                return
        _IDLE.put(worker)

    def load(self, data: bytes, path: str, labels: list[str], arena: int) -> LoadedModel:
        """Build ``data`` in the spare interpreter; switch to it only if that worked."""
        worker = self._take_spare()
        try:
            reply = worker.call({"op": "load", "model": data, "arena": arena}, LOAD_TIMEOUT_S,
                                worker_wire.check_load)
        except ModelError:  # it crashed or hung: a new spare replaces it
            worker.kill()
            self._warm_up_later()
            raise
        if not reply.get("ok"):
            self._give_back(worker)
            raise ModelError(str(reply.get("code", "BAD_MODEL")), str(reply.get("message")),
                             reply.get("needed"))
        model = LoadedModel(data=data, path=path, labels=labels, inputs=reply["inputs"],
                            outputs=reply["outputs"], arena_used=int(reply["arena_used"]),
                            backend=str(reply.get("backend", worker.backend)))
        with self._lock:
            old, self._worker = self._worker, worker
            self.current = model
        if old is not None:
            self._give_back(old)
        elif not self._pool:
            self._warm_up_later()
        return model

    def infer(self, raw: bytes) -> tuple[bytes, int]:
        with self._lock:
            worker, model = self._worker, self.current
        if worker is None or model is None:
            raise ModelError("NO_MODEL", "no model is loaded")
        try:
            reply = worker.call({"op": "infer", "input": raw}, INFER_TIMEOUT_S,
                                lambda r: worker_wire.check_infer(r, model.outputs[0]))
        except ModelError:
            if not worker.alive():  # the interpreter crashed: the board has no model now
                with self._lock:
                    if self._worker is worker:
                        self._worker, self.current = None, None
                worker.kill()
            raise
        if not reply.get("ok"):
            raise ModelError(str(reply.get("code", "BAD_MODEL")), str(reply.get("message")))
        with self._lock:
            if self._worker is not worker:  # the model was switched during the call
                raise ModelError("BAD_MODEL", "the model changed during the inference")
        return reply["output"], int(reply["latency_us"])

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, []
        with self._lock:
            worker, self._worker = self._worker, None
            self.current = None
        for w in [*pool, worker]:
            if w is not None:
                _IDLE.put(w)
