"""Flashing: one interface, one small module per back end, verified by the device, recorded.

    from device_drivers.flashing import flash, prepare
    result = flash("model_int8.tflite", "/dev/ttyACM0", progress=print_progress)
    job = prepare("model_int8.tflite", board="nano33ble")   # once, for any number of boards
    result = flash(job, "/dev/ttyACM0", recorder=record_flash)

One pass: :func:`prepare` loads the artifact (its kind sniffed once, its sha256 computed
once), looks the board up once and chooses the back end; ``flash()`` takes that
:class:`PreparedFlash` (or prepares a path or an ``Artifact`` itself) and hands the board's
entry down to the back end in ``FlashOptions.board_entry``: nothing is loaded, sniffed or
looked up twice on the way to the device, whatever the number of boards a station flashes.

``flash`` picks the back end (explicit, else the one that claims the artifact's kind, else
the board registry's, else smp: :mod:`device_drivers.flashing.registry`), runs it, refuses
any result the device did not verify, and hands every outcome to the caller's ``recorder``
(the CLI and the GUI pass ``fleet_ops.records.device_ops.record_flash``: one provisioning
record whatever happens; the drivers do not know where records go).
A failure (any exception, Ctrl-C included: recorded as ``cancelled``) raises the back end's
error with the failed ``FlashResult`` attached as ``exc.result``; a cancelled flash says in
its message what the board runs now (``exc.board_runs``: the previous model's sha256, since
the load is atomic).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from device_drivers.errors import VerifyError
from device_drivers.flashing.base import (
    Artifact,
    Backend,
    CancelToken,
    FlashOptions,
    FlashResult,
    Progress,
    Stopwatch,
    lookup_board,
    null_progress,
)
from device_drivers.flashing.registry import choose_backend, get_backend
from tinyops_base.errors import describe

if TYPE_CHECKING:
    from device_drivers.boards.registry import Board

log = logging.getLogger(__name__)

__all__ = [
    "Artifact",
    "Backend",
    "FlashOptions",
    "FlashResult",
    "PreparedFlash",
    "choose_backend",
    "flash",
    "get_backend",
    "prepare",
]

FlashRecorder = Callable[[FlashResult, Artifact, str], "int | None"]
"""Called with (result, artifact, outcome) once per flash, outcome ``ok``, ``failed`` or
``cancelled``; returns the record's id, or None when it could not be written."""


@dataclass(frozen=True)
class PreparedFlash:
    """What a flash needs, found once: the artifact (bytes, kind, sha256), the board's
    registry entry (None when no board was named) and the back end chosen for them."""

    artifact: Artifact
    board: Board | None
    backend: str

    @property
    def kind(self) -> str:
        return self.artifact.kind

    @property
    def sha256(self) -> str:
        return self.artifact.sha256

    @property
    def board_id(self) -> str | None:
        return getattr(self.board, "id", None)

    def options(self, options: FlashOptions | None = None) -> FlashOptions:
        """``options`` (a copy) carrying this flash's board and its registry entry."""
        options = options or FlashOptions()
        if options.board and options.board != self.board_id:
            raise ValueError(f"prepared for board {self.board_id!r}, the options name "
                             f"{options.board!r}: prepare with the options' board")
        return dataclasses.replace(options, board=self.board_id or options.board,
                                   board_entry=self.board)


def prepare(artifact: Artifact | str | Path, board: str | None = None,
            backend: str | None = None, *, board_entry: Board | None = None) -> PreparedFlash:
    """Load ``artifact`` (unless it is one), look ``board`` up (unless its ``board_entry``
    is given) and choose the back end (explicit, else by kind, else the board's);
    InputError for a file that cannot be used, an unknown board or back end."""
    if not isinstance(artifact, Artifact):
        artifact = Artifact.load(artifact)
    entry = board_entry if board_entry is not None else lookup_board(board)
    return PreparedFlash(artifact, entry, choose_backend(artifact, entry, backend))


def flash(artifact: PreparedFlash | Artifact | str | Path, port: str | None, *,
          backend: str | Backend | None = None, options: FlashOptions | None = None,
          progress: Progress | None = None,
          cancel: CancelToken | None = None, recorder: FlashRecorder | None = None,
          usb_serial: str | None = None) -> FlashResult:
    """Flash ``artifact`` to the board on ``port`` and prove it; see the module docstring.
    ``backend``: a name or an instance (e.g. smp through an open session); None: the one
    ``prepare`` chose."""
    from device_drivers.flashing.probe import usb_serial_for

    options = options or FlashOptions()
    progress = progress or null_progress
    clock = Stopwatch()
    job: PreparedFlash | None = None
    if isinstance(artifact, PreparedFlash):
        job, art = artifact, artifact.artifact
    else:
        art = artifact if isinstance(artifact, Artifact) else Artifact.load(artifact)
    serial_no = usb_serial or usb_serial_for(port)
    name = backend if isinstance(backend, str) or backend is None else backend.name
    result: FlashResult | None = None
    try:
        if job is None:  # not prepared: the board is looked up here, once
            job = prepare(art, options.board, board_entry=options.board_entry)
        options = job.options(options)
        impl: Backend
        if backend is None or isinstance(backend, str):
            name = choose_backend(art, job.board, backend) if backend else job.backend
            impl = get_backend(name)
        else:
            impl = backend
        log.info("flash %s (%s, %d B) to %s via %s", art.name, art.kind,
                 art.size, port, name)
        result = impl.flash(art, port, options, progress, cancel)
        result.usb_serial = result.usb_serial or serial_no
        if not (result.ok and result.verified and result.device_digest):
            raise VerifyError(f"{port}: the device did not verify {art.name}",
                              "no verification, no success: flash again")
    except BaseException as exc:  # every outcome is recorded: errors, bugs, Ctrl-C
        said = describe(exc)
        failed = FlashResult(
            ok=False, backend=str(name or "?"), port=port, artifact=art.name,
            artifact_sha256=art.sha256, bytes=art.size, duration_s=clock.elapsed,
            local_digest=art.expected_model_sha256 or art.sha256,
            device_digest=result.device_digest if result else None,
            board=options.board, usb_serial=serial_no, error=said.message, hint=said.hint,
            dest=options.dest, previous_sha256=getattr(exc, "board_runs", None))
        with contextlib.suppress(AttributeError):
            exc.result = failed  # type: ignore[attr-defined]
        if recorder is not None:
            _record(recorder, failed, art, "cancelled" if said.cancelled else "failed")
        raise
    if recorder is not None:
        _record(recorder, result, art, "ok")
    return result


def _record(recorder: FlashRecorder, result: FlashResult, artifact: Artifact,
            outcome: str) -> None:
    try:
        rid = recorder(result, artifact, outcome)
    except Exception:  # a record that cannot be written never hides the flash's outcome
        log.exception("writing the provisioning record of %s failed", artifact.name)
        rid = None
    if rid is None:
        result.notes.append("the provisioning record could not be written (see the log)")
