"""The Flash page's jobs: flash one board, validate on target (run on worker threads).

When the board is the one the window is connected to, model files and the validation go
through the window's open ``DeviceSession`` (one owner per port; the live plot keeps
running during the upload). Back ends that open the port themselves (an MCUboot image
reset into its bootloader, esptool, arduino-cli, UF2) get the port from the window first:
the job waits (``wait_port``) until the window's reader has closed it.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from device_drivers.errors import Cancelled, DeviceError, InputError, TinyOpsError

SHARED_KINDS = ("model", "binary")  # what the SMP back end uploads as a file
SHARED_BACKENDS = (None, "smp", "virtual")


def shares_session(path: str, backend: str | None) -> bool:
    """Whether flashing ``path`` with ``backend`` can use an open session (else the back end
    opens the port itself). Reads only the file's head (cheap on the GUI thread)."""
    from device_drivers.flashing.base import sniff_kind

    if backend not in SHARED_BACKENDS:
        return False
    p = Path(path)
    try:
        if p.is_dir():
            return False
        with p.open("rb") as f:
            head = f.read(512)
    except OSError:
        return True  # the job reports the missing file
    return sniff_kind(head, p.name) in SHARED_KINDS


def shared_session_backend(session: Any) -> Any:
    """The SMP back end, talking through an already open session."""
    from device_drivers.flashing.smp import SmpBackend

    return SmpBackend(session=session)


def refuse(message: str, hint: str) -> None:
    """A flash that cannot start now (shown in its row like any failure)."""
    raise DeviceError(message, hint)


def describe_file(path: str) -> dict[str, Any]:
    """Kind, size and sha256 of the artifact field's file (a worker job: it reads the file)."""
    p = Path(path)
    if not path or not p.is_file():
        return {"path": path, "found": False}
    size = p.stat().st_size
    digest = hashlib.sha256()
    with p.open("rb") as f:
        head = f.read(512)
        digest.update(head)
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    from device_drivers.flashing.base import sniff_kind

    return {"path": path, "found": True, "size": size, "sha256": digest.hexdigest(),
            "kind": sniff_kind(head, p.name), "tflite": head[4:8] == b"TFL3"}


def _running_model(session: Any) -> str | None:
    """The sha256 of the model the board's runtime runs now (None if unknown)."""
    try:
        info = session.model_info()
    except Exception:  # the board may be gone: then nobody knows
        return None
    if info is None or not getattr(info, "loaded", False) or not getattr(info, "sha256", None):
        return None
    return bytes(info.sha256).hex()


def _ask_running_model(port: str) -> str | None:
    """Open the port briefly and ask the runtime what it runs (after a failed flash)."""
    from device_drivers.link.session import DeviceSession

    try:
        with DeviceSession.open(port, timeout_s=2.0) as dev:
            return _running_model(dev)
    except Exception:
        return None


def flash_job(path: str, port: str, *, backend: str | None = None, board: str | None = None,
              dest: str | None = None, usb_serial: str | None = None, session: Any = None,
              wait_port: Any = None, record: bool = True, progress: Any = None,
              cancel: Any = None) -> dict[str, Any]:
    """Flash and verify; returns the FlashResult as a dict (``ok`` False with the error if
    the board refused or did not verify; the provisioning record is written either way,
    unless ``record`` is False: the demo board is not a provisioned device).

    A model for a UF2 or Arduino board is exported first, exactly as ``tinyops flash`` does
    (:func:`app.flash_prep.prepare_artifact`). After a failure ``still_runs`` is the sha256
    of the model the board still runs (the flash's ``previous_sha256``, or asked afresh).

    ``wait_port(timeout_s) -> bool``: called first, True once the window let go of the port.
    """
    import tempfile

    from app.flash_prep import prepare_artifact
    from device_drivers.flashing import FlashOptions, flash
    from fleet_ops.records.device_ops import record_flash

    if not path:
        raise InputError("no artifact chosen", "pick a .tflite model (or an image) to flash")
    if wait_port is not None:
        if progress:
            progress(0.0, f"closing the live view's link to {port}")
        if not wait_port(8.0):
            raise DeviceError(f"{port} is still held by the live view",
                              "disconnect the board (Device menu), then flash again")
    with tempfile.TemporaryDirectory(prefix="tinyops-flash-") as tmp:
        job = prepare_artifact(path, backend, board, Path(tmp))
        artifact, chosen = job.artifact, job.backend
        shared = (session is not None and artifact.kind in SHARED_KINDS
                  and chosen in SHARED_BACKENDS)
        impl = shared_session_backend(session) if shared else None
        before = _running_model(session) if shared else None
        options = FlashOptions(dest=dest or None, board=board)
        try:
            result = flash(job, port, backend=impl, options=options, progress=progress,
                           cancel=cancel, usb_serial=usb_serial,
                           recorder=record_flash if record else None)
        except Cancelled:
            raise
        except TinyOpsError as exc:
            failed = getattr(exc, "result", None)
            out = failed.to_dict() if failed is not None else {"ok": False, "port": port}
            out.update(ok=False, error=exc.message, hint=exc.hint)
            still = out.get("previous_sha256")
            if not still and artifact.kind in SHARED_KINDS and chosen in SHARED_BACKENDS:
                still = (_running_model(session) if shared else _ask_running_model(port))
            still = still or before
            out["still_runs"] = still
            return out
    return result.to_dict()


def validate_job(model_path: str, data_path: str, port: str, *, session: Any = None,
                 limit: int | None = 200, usb_serial: str | None = None, record: bool = True,
                 progress: Any = None, cancel: Any = None) -> dict[str, Any]:
    """Send samples through the board's runtime and compare with the host's TFLM run
    (``record`` False: no provisioning record, for the demo board)."""
    from device_drivers.validate import failure_of, run_validation, validate
    from fleet_ops.records.device_ops import record_validation
    from model_tools.data import load_dataset
    from model_tools.tflm import run_model

    model_file = Path(model_path)
    if not model_path or not model_file.is_file():
        raise InputError("no .tflite model chosen", "pick the model the board runs")
    model = model_file.read_bytes()
    if model[4:8] != b"TFL3":
        raise InputError(f"{model_file.name} is not a .tflite model",
                         "validate the quantized .tflite the board runs")
    if not data_path:
        raise InputError("no validation data chosen", "pick a .npz with x (and y labels)")
    data = load_dataset(data_path)
    sha = hashlib.sha256(model).hexdigest()

    def reference(raw: Any) -> Any:
        return run_model(model, raw)[0]

    if session is None:
        result = run_validation(port, data.x, reference, artifact=model_file.name,
                                model_sha256=sha, artifact_size=len(model), labels=data.y,
                                progress=progress, cancel=cancel, limit=limit,
                                recorder=record_validation if record else None)
    else:
        started = time.monotonic()
        try:
            result = validate(session, data.x, reference, labels=data.y, model_sha256=sha,
                              progress=progress, cancel=cancel, limit=limit)
        except Exception as exc:  # the host reference raises model_tools' errors too
            outcome, text = failure_of(exc)
            if record:
                record_validation(None, port=port, artifact=model_file.name,
                                  artifact_sha256=sha, artifact_size=len(model),
                                  usb_serial=usb_serial,
                                  error=text, duration_s=time.monotonic() - started,
                                  outcome=outcome)
            raise
        if record:
            record_validation(result, port=port, artifact=model_file.name,
                              artifact_sha256=sha, artifact_size=len(model),
                              usb_serial=usb_serial)
    out = result.to_dict()
    out["verify_text"] = result.verify_text
    return out
