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


class _Borrowed:
    """Context manager handing out a session without closing it afterwards."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def __enter__(self) -> Any:
        return self.session

    def __exit__(self, *exc: object) -> None:
        return None


def shared_session_backend(session: Any) -> Any:
    """The SMP back end, talking through an already open session."""
    from device_drivers.flashing.smp import SmpBackend

    class SharedSessionSmp(SmpBackend):
        def _open(self, port: str, options: Any) -> Any:
            return _Borrowed(session)

    return SharedSessionSmp()


def refuse(message: str, hint: str) -> None:
    """A flash that cannot start now (shown in its row like any failure)."""
    raise DeviceError(message, hint)


def flash_job(path: str, port: str, *, backend: str | None = None, board: str | None = None,
              dest: str | None = None, usb_serial: str | None = None, session: Any = None,
              wait_port: Any = None, progress: Any = None,
              cancel: Any = None) -> dict[str, Any]:
    """Flash and verify; returns the FlashResult as a dict (``ok`` False with the error if
    the board refused or did not verify; the provisioning record is written either way).

    ``wait_port(timeout_s) -> bool``: called first, True once the window let go of the port.
    """
    from device_drivers.flashing import Artifact, FlashOptions, flash

    if not path:
        raise InputError("no artifact chosen", "pick a .tflite model (or an image) to flash")
    if wait_port is not None:
        if progress:
            progress(0.0, f"closing the live view's link to {port}")
        if not wait_port(8.0):
            raise DeviceError(f"{port} is still held by the live view",
                              "disconnect the board (Device menu), then flash again")
    artifact = Artifact.load(path)
    impl: Any = backend
    if session is not None and artifact.kind in SHARED_KINDS and backend in SHARED_BACKENDS:
        impl = shared_session_backend(session)
    options = FlashOptions(dest=dest or None, board=board)
    try:
        result = flash(artifact, port, backend=impl, options=options, progress=progress,
                       cancel=cancel, usb_serial=usb_serial)
    except Cancelled:
        raise
    except TinyOpsError as exc:
        failed = getattr(exc, "result", None)
        out = failed.to_dict() if failed is not None else {"ok": False, "port": port}
        out.update(ok=False, error=exc.message, hint=exc.hint)
        return out
    return result.to_dict()


def validate_job(model_path: str, data_path: str, port: str, *, session: Any = None,
                 limit: int | None = 200, usb_serial: str | None = None,
                 progress: Any = None, cancel: Any = None) -> dict[str, Any]:
    """Send samples through the board's runtime and compare with the host's TFLM run."""
    from device_drivers.validate import failure_of, record_validation, run_validation, validate
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
                                progress=progress, cancel=cancel, limit=limit)
    else:
        started = time.monotonic()
        try:
            result = validate(session, data.x, reference, labels=data.y, model_sha256=sha,
                              progress=progress, cancel=cancel, limit=limit)
        except Exception as exc:  # the host reference raises model_tools' errors too
            outcome, text = failure_of(exc)
            record_validation(None, port=port, artifact=model_file.name, artifact_sha256=sha,
                              artifact_size=len(model), usb_serial=usb_serial, error=text,
                              duration_s=time.monotonic() - started, outcome=outcome)
            raise
        record_validation(result, port=port, artifact=model_file.name, artifact_sha256=sha,
                          artifact_size=len(model), usb_serial=usb_serial)
    out = result.to_dict()
    out["verify_text"] = result.verify_text
    return out
