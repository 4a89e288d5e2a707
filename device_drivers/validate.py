"""On-target validation: the board's outputs, sample by sample, against the host's TFLM run.

Samples are quantized once, with the input tensor spec the runtime reports, and the same
raw tensors go to the board (``infer``) and to the host reference. With the same model and
the same TFLite Micro kernels the outputs must be bit-identical; any difference is
reported (how many samples, which, the largest difference in raw units and after
dequantization). With labels, both accuracies are computed; the board's measured latency
per inference gives median and p95.

device_drivers must not import model_tools: the caller passes the host reference as raw
outputs or as a callable ``raw inputs (N, ...) -> raw outputs (N, ...)``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from device_drivers.errors import DeviceError, InputError
from device_drivers.flashing.base import CancelToken, Progress, check_cancel, null_progress
from device_drivers.protocol.runtime import TensorSpec
from tinyops_base.errors import describe

log = logging.getLogger(__name__)

Reference = Callable[[np.ndarray], np.ndarray]
_INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767),
               "int32": (-(2**31), 2**31 - 1)}


@dataclass
class ValidationResult:
    port: str
    board: str | None
    model_sha256: str | None
    samples: int
    mismatches: int
    mismatch_indices: list[int]
    max_abs_diff: float
    """Largest |device - host| in raw output units (LSBs for int8)."""
    max_abs_diff_dequant: float
    accuracy_device: float | None
    accuracy_host: float | None
    agreement: float
    """Share of samples whose top class is the same on the board and the host."""
    latency_us_median: float
    latency_us_p95: float
    latency_us_max: float
    duration_s: float
    notes: list[str] = field(default_factory=list)

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0

    @property
    def ok(self) -> bool:
        return self.bit_exact

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bit_exact"] = self.bit_exact
        out["ok"] = self.ok
        return out

    @property
    def verify_text(self) -> str:
        if self.bit_exact:
            return f"bit-exact {self.samples}/{self.samples}"
        return (f"{self.mismatches}/{self.samples} samples differ, max |diff| "
                f"{self.max_abs_diff:g} LSB")


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float samples → the runtime's input dtype (round to nearest, clip), like firmware."""
    dtype = np.dtype(spec.dtype)
    if spec.dtype in _INT_RANGES:
        if np.issubdtype(x.dtype, np.integer) and x.dtype == dtype:
            return x  # already raw
        if not spec.scale:
            raise InputError(f"the input tensor is {spec.dtype} without quantization scale",
                             "give raw integer samples")
        lo, hi = _INT_RANGES[spec.dtype]
        q = np.round(np.asarray(x, np.float64) / spec.scale) + spec.zero_point
        return np.clip(q, lo, hi).astype(dtype)
    return np.asarray(x, dtype=dtype)


def dequantize(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if spec.dtype in _INT_RANGES and spec.scale:
        return (raw.astype(np.float64) - spec.zero_point) * spec.scale
    return raw.astype(np.float64)


def _shape_samples(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    per = int(np.prod([d for d in spec.shape[1:]] or [1])) if spec.shape else 1
    if x.ndim == 0 or x.size % max(per, 1) or x.size // max(per, 1) != len(x):
        want = "x".join(str(d) for d in spec.shape[1:])
        raise InputError(f"samples of shape {x.shape[1:]} do not fit the model input {want}",
                         "give data made for this model (N samples of its input shape)")
    return x.reshape((len(x), *spec.shape[1:]))


def validate(session: Any, x: np.ndarray, reference: Reference | np.ndarray, *,
             labels: np.ndarray | None = None, model_sha256: str | None = None,
             progress: Progress | None = None, cancel: CancelToken | None = None,
             limit: int | None = None, atol: float = 0.0) -> ValidationResult:
    """Run ``x`` through the runtime on ``session`` (an open DeviceSession) and compare."""
    progress = progress or null_progress
    started = time.monotonic()
    info = session.model_info()
    if info is None:
        raise DeviceError(f"{session.port} has no TinyOps runtime: nothing can run inferences",
                          "flash the TinyOps runtime firmware first")
    if not info.loaded or not info.inputs or not info.outputs:
        raise DeviceError(f"{session.port} has no model loaded",
                          "flash it first: tinyops flash MODEL --port PORT")
    running = bytes(info.sha256).hex() if info.sha256 else None
    if model_sha256 and running != model_sha256:
        raise DeviceError(f"{session.port} runs model {(running or '?')[:16]}…, not the one "
                          f"being validated ({model_sha256[:16]}…)",
                          "flash the model first: tinyops flash MODEL --port PORT")
    in_spec, out_spec = info.inputs[0], info.outputs[0]
    x = np.asarray(x)
    if limit is not None:
        x = x[:limit]
        labels = None if labels is None else np.asarray(labels)[:limit]
    if len(x) == 0:
        raise InputError("no samples to validate", "give a data file with samples")
    raw_in = quantize(_shape_samples(x, in_spec), in_spec)
    host = reference(raw_in) if callable(reference) else np.asarray(reference)
    host = np.asarray(host)
    if len(host) != len(raw_in):
        raise InputError(f"the host reference has {len(host)} outputs for {len(raw_in)} samples")
    out_dtype = np.dtype(out_spec.dtype)
    per_out = int(np.prod(out_spec.shape[1:] or [1]))
    device = np.empty((len(raw_in), per_out), dtype=out_dtype)
    latencies = np.empty(len(raw_in), dtype=np.float64)
    for i, sample in enumerate(raw_in):
        check_cancel(cancel, f"validation at sample {i}/{len(raw_in)}")
        out, latency = session.infer(np.ascontiguousarray(sample).tobytes())
        got = np.frombuffer(out, dtype=out_dtype)
        if got.size != per_out:
            raise DeviceError(f"{session.port} returned {got.size} outputs, expected {per_out}")
        device[i] = got
        latencies[i] = latency
        progress((i + 1) / len(raw_in), f"{i + 1}/{len(raw_in)} samples")
    host_flat = host.reshape(len(host), -1).astype(np.float64)
    diff = np.abs(device.astype(np.float64) - host_flat)
    bad = np.nonzero(diff.max(axis=1) > atol)[0]
    dev_top = device.reshape(len(device), -1).argmax(axis=1)
    host_top = host_flat.argmax(axis=1)
    acc_dev = acc_host = None
    if labels is not None:
        y = np.asarray(labels).reshape(-1)
        if len(y) != len(device):
            raise InputError(f"{len(y)} labels for {len(device)} samples",
                             "give one label per sample")
        acc_dev = float(np.mean(dev_top == y))
        acc_host = float(np.mean(host_top == y))
    deq = np.abs(dequantize(device, out_spec) - dequantize(host_flat, out_spec))
    result = ValidationResult(
        port=session.port, board=info.board, model_sha256=running, samples=len(device),
        mismatches=len(bad), mismatch_indices=[int(i) for i in bad[:50]],
        max_abs_diff=float(diff.max()), max_abs_diff_dequant=float(deq.max()),
        accuracy_device=acc_dev, accuracy_host=acc_host,
        agreement=float(np.mean(dev_top == host_top)),
        latency_us_median=float(np.median(latencies)),
        latency_us_p95=float(np.percentile(latencies, 95)),
        latency_us_max=float(latencies.max()), duration_s=time.monotonic() - started)
    log.info("validate on %s: %s", session.port, result.verify_text)
    return result


def failure_of(exc: BaseException) -> tuple[str, str]:
    """``(outcome, error text)`` of a validation that raised ``exc``, whatever raised it (the
    host reference is the caller's code): ``tinyops_base.errors.describe`` decides."""
    said = describe(exc)
    return ("cancelled" if said.cancelled else "failed"), said.message


def record_validation(result: ValidationResult | None, *, port: str, artifact: str,
                      artifact_sha256: str | None, artifact_size: int | None,
                      usb_serial: str | None = None, error: str | None = None,
                      duration_s: float | None = None, outcome: str | None = None) -> int | None:
    """Write the provisioning record of one validation (also when it failed to run)."""
    from device_drivers.records import Record, add_record

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


def run_validation(port: str, x: np.ndarray, reference: Reference | np.ndarray, *,
                   artifact: str, model_sha256: str | None, artifact_size: int | None = None,
                   labels: np.ndarray | None = None, progress: Progress | None = None,
                   cancel: CancelToken | None = None, limit: int | None = None,
                   atol: float = 0.0, record: bool = True,
                   timeout_s: float = 5.0) -> ValidationResult:
    """Open ``port``, validate, and write the provisioning record (also on failure: any
    exception, from the link or from the host reference, is recorded and raised again)."""
    from device_drivers.flashing.probe import usb_serial_for
    from device_drivers.link.session import DeviceSession

    started = time.monotonic()
    serial_no = usb_serial_for(port)
    try:
        with DeviceSession.open(port, timeout_s=timeout_s) as dev:
            result = validate(dev, x, reference, labels=labels, model_sha256=model_sha256,
                              progress=progress, cancel=cancel, limit=limit, atol=atol)
    except BaseException as exc:  # Ctrl-C included: recorded as cancelled
        if record:
            outcome, text = failure_of(exc)
            record_validation(None, port=port, artifact=artifact, artifact_sha256=model_sha256,
                              artifact_size=artifact_size, usb_serial=serial_no,
                              error=text, duration_s=time.monotonic() - started,
                              outcome=outcome)
        raise
    if record:
        rid = record_validation(result, port=port, artifact=artifact,
                                artifact_sha256=model_sha256, artifact_size=artifact_size,
                                usb_serial=serial_no)
        if rid is None:
            result.notes.append("the provisioning record could not be written (see the log)")
    return result
