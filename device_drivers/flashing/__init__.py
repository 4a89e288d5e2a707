"""Flashing: one interface, one small module per back end, verified by the device, recorded.

    from device_drivers.flashing import flash
    result = flash("model_int8.tflite", "/dev/ttyACM0", progress=print_progress)

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
import logging
from collections.abc import Callable
from pathlib import Path

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

log = logging.getLogger(__name__)

__all__ = [
    "Artifact",
    "Backend",
    "FlashOptions",
    "FlashResult",
    "choose_backend",
    "flash",
    "get_backend",
]

FlashRecorder = Callable[[FlashResult, Artifact, str], "int | None"]
"""Called with (result, artifact, outcome) once per flash, outcome ``ok``, ``failed`` or
``cancelled``; returns the record's id, or None when it could not be written."""


def flash(artifact: Artifact | str | Path, port: str | None, *,
          backend: str | Backend | None = None, options: FlashOptions | None = None,
          progress: Progress | None = None,
          cancel: CancelToken | None = None, recorder: FlashRecorder | None = None,
          usb_serial: str | None = None) -> FlashResult:
    """Flash ``artifact`` to the board on ``port`` and prove it; see the module docstring."""
    from device_drivers.flashing.probe import usb_serial_for

    options = options or FlashOptions()
    progress = progress or null_progress
    clock = Stopwatch()
    if not isinstance(artifact, Artifact):
        artifact = Artifact.load(artifact)
    serial_no = usb_serial or usb_serial_for(port)
    name = backend if isinstance(backend, str) or backend is None else backend.name
    result: FlashResult | None = None
    try:
        board = lookup_board(options.board)
        if isinstance(backend, str) or backend is None:
            name = choose_backend(artifact, board, backend)
            impl = get_backend(name)
        else:
            impl = backend
        log.info("flash %s (%s, %d B) to %s via %s", artifact.name, artifact.kind,
                 artifact.size, port, name)
        result = impl.flash(artifact, port, options, progress, cancel)
        result.usb_serial = result.usb_serial or serial_no
        if not (result.ok and result.verified and result.device_digest):
            raise VerifyError(f"{port}: the device did not verify {artifact.name}",
                              "no verification, no success: flash again")
    except BaseException as exc:  # every outcome is recorded: errors, bugs, Ctrl-C
        said = describe(exc)
        failed = FlashResult(
            ok=False, backend=str(name or "?"), port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=artifact.size, duration_s=clock.elapsed,
            local_digest=artifact.expected_model_sha256 or artifact.sha256,
            device_digest=result.device_digest if result else None,
            board=options.board, usb_serial=serial_no, error=said.message, hint=said.hint,
            dest=options.dest, previous_sha256=getattr(exc, "board_runs", None))
        with contextlib.suppress(AttributeError):
            exc.result = failed  # type: ignore[attr-defined]
        if recorder is not None:
            _record(recorder, failed, artifact, "cancelled" if said.cancelled else "failed")
        raise
    if recorder is not None:
        _record(recorder, result, artifact, "ok")
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
