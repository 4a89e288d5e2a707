"""The tflite-micro worker process: start, limits, data-only replies, log, clean shutdown.

Used by :mod:`model_tools.tflm` (which adds the operations). The child
(``_tflm_worker``) runs untrusted models, so it gets resource limits (:class:`WorkerLimits`)
and everything it sends back goes through :mod:`model_tools._tflm_wire` (JSON headers plus
raw buffers, size-limited, checked against the request; never pickle). Its stdout and stderr
(TFLM's own messages) are captured per request and returned bounded (``MAX_LOG``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any, ClassVar

from model_tools import _tflm_wire as wire
from model_tools.errors import InvalidModelError, ModelToolsError, RuntimeUnavailable
from tinyops_base.limits import ChildLimits
from tinyops_base.wire import fd_reader

log = logging.getLogger(__name__)

MAX_REPLY = 256 << 20
"""Largest reply accepted from the worker (raw output buffers of one batch)."""
MAX_LOG = 8192
"""The runtime's own log, as returned in results and errors (head and tail kept)."""
MAX_LOG_READ = 4 << 20


def tflm_available() -> bool:
    """Whether the tflite-micro Python runtime is installed (Linux x86-64 wheels only)."""
    try:
        return importlib.util.find_spec("tflite_micro") is not None
    except (ImportError, ValueError):  # broken or blocked (TINYOPS_BLOCK_TFLM in the tests)
        return False


def _platform() -> str:
    import platform

    return f"{platform.system() or sys.platform} {platform.machine() or '?'}"


TFLM_MISSING = (f"tflite-micro is not installed (this system: {_platform()}; its wheels "
                "exist for Linux x86-64 only)")
"""Why a TFLM-only figure is missing: in reports and in ``not available`` labels."""


class TflmError(ModelToolsError):
    """tflite-micro failed; ``log`` is the runtime's own output (bounded, may be empty)."""

    def __init__(self, message: str, hint: str | None = None, *, log: str = "") -> None:
        super().__init__(message, hint)
        self.log = log


class WorkerCrashed(TflmError):
    """The interpreter process died (e.g. SIGSEGV) while handling a request."""

    def __init__(self, returncode: int | None, log_tail: str) -> None:
        name = _signal_name(returncode)
        super().__init__(f"tflite-micro crashed ({name})", log=log_tail)
        self.returncode = returncode
        self.log_tail = log_tail


class WorkerProtocolError(TflmError):
    """The worker sent something other than a well-formed, expected reply: it was stopped
    and nothing in the reply was used (a model exploiting the runtime could cause this)."""

    def __init__(self, detail: str, log_tail: str) -> None:
        super().__init__(f"the tflite-micro worker sent an invalid reply and was stopped: "
                         f"{detail}", "do not trust this model: it may attack the runtime",
                         log=log_tail)


def _signal_name(code: int | None) -> str:
    if code is None:
        return "no answer"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"{signal.Signals(-code).name}, exit {128 - code}"
    return f"exit {code}"


@dataclass(frozen=True)
class WorkerLimits(ChildLimits):
    """Resource limits of the worker process (0: unlimited). Defaults from the environment:
    ``TINYOPS_TFLM_MAX_AS_MB``, ``TINYOPS_TFLM_MAX_CPU_S``, ``TINYOPS_TFLM_MAX_LOG_MB``."""

    address_space: int = 2048 << 20
    """``RLIMIT_AS``: the worker with the example model maps ~200 MB; a model's
    arena is at most ``MAX_ARENA``."""
    cpu_s: int = 900
    """``RLIMIT_CPU`` over the worker's life (SIGXCPU, then the worker is restarted)."""
    file_size: int = 64 << 20
    """``RLIMIT_FSIZE``: bounds the runtime log the worker can write."""
    ENV: ClassVar[tuple[str, str, str]] = (
        "TINYOPS_TFLM_MAX_AS_MB", "TINYOPS_TFLM_MAX_CPU_S", "TINYOPS_TFLM_MAX_LOG_MB")


class WorkerProcess:
    """One worker process holding one verified model; restarts itself after a crash.

    The operations (``build``, ``run``) are in :class:`model_tools.tflm.TflmProcess`.

    The worker's replies are data only (``_tflm_wire``), size-limited and checked against
    what the request asked for; a reply that is not stops the worker and raises
    ``WorkerProtocolError``. ``close()`` (or leaving the ``with`` block) ends the worker and
    closes its pipes and log; the object can be used again afterwards (a new worker starts).
    """

    def __init__(self, model: bytes, timeout_s: float = 120.0, *,
                 limits: WorkerLimits | None = None, max_reply: int = MAX_REPLY,
                 command: Sequence[str] | None = None) -> None:
        if command is None and not tflm_available():
            raise RuntimeUnavailable("the tflite-micro runtime is not installed",
                                     "install the tflite-micro package (Linux x86-64)")
        self.model = bytes(model)
        self.timeout_s = timeout_s
        self.limits = limits or WorkerLimits.from_env()
        self.max_reply = max_reply
        self._command = list(command) if command is not None else [
            sys.executable, "-m", "model_tools._tflm_worker"]
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._io: tuple[int, int] | None = None  # model's tensor counts, from the verifier
        self.restarts = 0

    # -- process management -----------------------------------------------------------------
    def _start(self) -> None:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
        if self._log is None:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        self._proc = subprocess.Popen(
            [*self._command, *self.limits.argv()], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._log, env=env)
        try:
            reply = self._exchange({"cmd": "load", "model": self.model})
        except BaseException:
            self.close()
            raise
        if reply["ok"]:
            self._verified_io()
        else:
            text = self.log_since(0)
            self.close()
            if reply.get("exit_code") == 2:
                raise InvalidModelError(reply["error"].split(": ", 1)[-1], reply.get("hint"))
            raise TflmError(f"tflite-micro could not load the model: {reply['error']}",
                            log=text)

    def _exchange(self, req: dict[str, Any], n_samples: int | None = None) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdin is not None
        deadline = time.monotonic() + self.timeout_s
        try:
            self._proc.stdin.write(wire.encode(req))
            self._proc.stdin.flush()
            assert self._proc.stdout is not None
            reply = wire.read_message(fd_reader(self._proc.stdout.fileno(), deadline),
                                      max_payload=self.max_reply)
            n_in, n_out = self._io or (None, None)
            return wire.check_reply(req["cmd"], reply, n_inputs=n_in, n_outputs=n_out,
                                    n_samples=n_samples)
        except TimeoutError:  # stuck (or spinning): stopped, reported as "no answer"
            self._reap()
            raise WorkerCrashed(None, _bounded(self.log_since(0))) from None
        except (BrokenPipeError, EOFError, OSError):
            code = self._reap()
            raise WorkerCrashed(code, _bounded(self.log_since(0))) from None
        except wire.WireError as exc:
            self._reap()
            raise WorkerProtocolError(str(exc), _bounded(self.log_since(0))) from None

    def _reap(self) -> int | None:
        """Kill the worker (if alive), wait for it and close its pipes; its exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        with contextlib.suppress(OSError):
            proc.kill()
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                if pipe is not None:
                    pipe.close()
        return code

    def request(self, req: dict[str, Any], n_samples: int | None = None) -> dict[str, Any]:
        if self._proc is None:
            self._start()
            if self.restarts:
                log.debug("tflite-micro worker restarted (%d)", self.restarts)
        return self._exchange(req, n_samples)

    def log_since(self, pos: int) -> str:
        """The worker's log from ``pos`` (stdout and stderr of the runtime), at most
        ``MAX_LOG`` characters (head and tail kept)."""
        if self._log is None or self._log.closed:
            return ""
        self._log.flush()
        self._log.seek(pos)
        raw = self._log.read(MAX_LOG_READ)
        self._log.seek(0, os.SEEK_END)
        return _bounded(raw.decode("utf-8", "replace"))

    def log_pos(self) -> int:
        if self._log is None:
            return 0
        self._log.seek(0, os.SEEK_END)
        return self._log.tell()

    def _new_log_section(self) -> int:
        """Start a request's log: the file restarts at 0 (it is bounded per request)."""
        if self._log is not None:
            self._log.seek(0)
            self._log.truncate()
        return 0

    def close(self) -> None:
        proc = self._proc
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write(wire.encode({"cmd": "quit"}))
                proc.stdin.flush()
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self._reap()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- operations ---------------------------------------------------------------------------

    def _verified_io(self) -> None:
        if self._io is None:
            from model_tools.verify import verify_tflite

            main = verify_tflite(self.model).main
            self._io = (len(main.inputs), len(main.outputs))


def _bounded(text: str, limit: int | None = None) -> str:
    limit = limit or MAX_LOG
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters of log left out ...]\n" \
        f"{text[-half:]}"
