"""The provisioning records of device operations: what ``flash()`` and ``run_validation()``
report, turned into a :class:`~fleet_ops.records.Record` and written where records go.

The drivers take these as their ``recorder`` (they do not know where records go); the CLI and
the GUI pass them, so every flash and every validation, whatever its outcome, leaves one
record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fleet_ops.records import Record, add_record

if TYPE_CHECKING:
    from device_drivers.flashing import Artifact, FlashResult
    from device_drivers.validate import ValidationResult


def record_for(result: FlashResult, artifact: Artifact, outcome: str) -> Record:
    """The provisioning record of one flash."""
    if result.device_digest:
        same = result.device_digest == result.local_digest
        verify = (f"{result.digest_algo} {'match' if same else 'MISMATCH'}: device "
                  f"{result.device_digest}")
    else:
        verify = "not verified"
    details = result.to_dict()
    for key in ("port", "board", "usb_serial", "backend", "artifact", "artifact_sha256",
                "error", "duration_s"):
        details.pop(key, None)
    details["kind"] = artifact.kind
    return Record(operation="flash", result=outcome, port=result.port, board=result.board,
                  usb_serial=result.usb_serial, backend=result.backend,
                  artifact=artifact.name, artifact_sha256=artifact.sha256,
                  artifact_size=artifact.size, verify=verify, error=result.error,
                  duration_s=round(result.duration_s, 4), details=details)


def record_validation(result: ValidationResult | None, *, port: str, artifact: str,
                      artifact_sha256: str | None, artifact_size: int | None,
                      usb_serial: str | None = None, error: str | None = None,
                      duration_s: float | None = None, outcome: str | None = None) -> int | None:
    """Write the provisioning record of one validation (also when it failed to run)."""
    if result is not None:
        details = result.to_dict()
        for key in ("port", "board", "duration_s"):
            details.pop(key, None)
        rec = Record(operation="validate", result=outcome or ("ok" if result.ok else "failed"),
                     port=port, board=result.board, usb_serial=usb_serial, backend="runtime",
                     artifact=artifact, artifact_sha256=artifact_sha256,
                     artifact_size=artifact_size, verify=result.verify_text,
                     duration_s=round(result.duration_s, 4), details=details)
    else:
        rec = Record(operation="validate", result=outcome or "failed", port=port,
                     usb_serial=usb_serial, backend="runtime", artifact=artifact,
                     artifact_sha256=artifact_sha256, artifact_size=artifact_size,
                     verify="not run", error=error, duration_s=duration_s)
    return add_record(rec)


def record_flash(result: FlashResult, artifact: Artifact, outcome: str) -> int | None:
    """The ``recorder`` of ``flash()``: write the record, return its id (None: not written)."""
    return add_record(record_for(result, artifact, outcome))
