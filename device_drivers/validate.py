"""On-target validation: the board's outputs, sample by sample, against the host's TFLM run.

Samples are quantized once, with the input tensor spec the runtime reports, and the same
raw tensors go to the board (``infer``) and to the host reference. With the same model and
the same TFLite Micro kernels the outputs must be bit-identical; any difference is
reported (how many samples, which, the largest difference in raw units and after
dequantization). With labels, both accuracies are computed; the board's measured latency
per inference gives median and p95.

device_drivers must not import model_tools: the caller passes the host reference as raw
outputs or as a callable ``raw inputs (N, ...) -> raw outputs (N, ...)``.

Where outputs differ and the caller gives per-operator host outputs (``layers``, e.g.
:func:`tflm_layers`: TFLM's Python interpreter with ``kPreserveAllTensors``), the first
differing sample is run again on the board with ``preserve`` on and every operator's output
is read back (runtime ``tensor`` command): the result names the first operator whose output
differs, the share of its elements that differ and the largest difference.
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
from device_drivers.protocol import runtime as rt
from device_drivers.protocol.runtime import TensorSpec
from tinyops_base.errors import describe

log = logging.getLogger(__name__)

Reference = Callable[[np.ndarray], np.ndarray]


@dataclass
class LayerOutput:
    """One operator's first output tensor on the host, for one sample."""

    op: str
    """Operator type (``CONV_2D``)."""
    name: str
    """Its output tensor's name."""
    raw: np.ndarray


LayerReference = Callable[[np.ndarray], list[LayerOutput]]
"""One raw input sample -> every operator's first output, in the model's operator order."""
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
    divergence: dict[str, Any] | None = None
    """Where outputs differ: the first operator whose output differs on the board (``op``
    index, ``op_type``, ``name``, ``elements``, ``differing``, ``share``, ``max_abs_diff`` in
    raw units, ``max_abs_diff_dequant``, ``sample``); ``op`` None when every operator's
    output agreed; ``{"supported": False}`` when the firmware keeps no intermediate tensors."""

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
        text = (f"{self.mismatches}/{self.samples} samples differ, max |diff| "
                f"{self.max_abs_diff:g} LSB")
        d = self.divergence
        if d and d.get("op") is not None:
            text += (f"; first diverging operator #{d['op']} {d.get('op_type') or ''} "
                     f"({d['name']}): {d['share']:.1%} of {d['elements']} elements differ, "
                     f"max {d['max_abs_diff']:g} LSB")
        return text


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
             limit: int | None = None, atol: float = 0.0,
             layers: LayerReference | None = None) -> ValidationResult:
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
    _check_fits_one_request(session, raw_in[0].nbytes)
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
    if len(bad) and layers is not None:
        result.divergence = first_divergence(session, raw_in[bad[0]], layers)
        result.divergence["sample"] = int(bad[0])
    log.info("validate on %s: %s", session.port, result.verify_text)
    return result


def failure_of(exc: BaseException) -> tuple[str, str]:
    """``(outcome, error text)`` of a validation that raised ``exc``, whatever raised it (the
    host reference is the caller's code): ``tinyops_base.errors.describe`` decides."""
    said = describe(exc)
    return ("cancelled" if said.cancelled else "failed"), said.message


ValidationRecorder = Callable[..., "int | None"]
"""Called once per validation as ``recorder(result_or_None, port=, artifact=,
artifact_sha256=, artifact_size=, usb_serial=, [error=, duration_s=, outcome=])``; returns the
record's id, or None (``fleet_ops.records.device_ops.record_validation`` is the one the CLI
and the GUI pass)."""


def run_validation(port: str, x: np.ndarray, reference: Reference | np.ndarray, *,
                   artifact: str, model_sha256: str | None, artifact_size: int | None = None,
                   labels: np.ndarray | None = None, progress: Progress | None = None,
                   cancel: CancelToken | None = None, limit: int | None = None,
                   atol: float = 0.0, recorder: ValidationRecorder | None = None,
                   timeout_s: float = 5.0,
                   layers: LayerReference | None = None) -> ValidationResult:
    """Open ``port``, validate, and hand the outcome to ``recorder`` (also on failure: any
    exception, from the link or from the host reference, is recorded and raised again)."""
    from device_drivers.flashing.probe import usb_serial_for
    from device_drivers.link.session import DeviceSession

    started = time.monotonic()
    serial_no = usb_serial_for(port)
    try:
        with DeviceSession.open(port, timeout_s=timeout_s) as dev:
            result = validate(dev, x, reference, labels=labels, model_sha256=model_sha256,
                              progress=progress, cancel=cancel, limit=limit, atol=atol,
                              layers=layers)
    except BaseException as exc:  # Ctrl-C included: recorded as cancelled
        if recorder is not None:
            outcome, text = failure_of(exc)
            recorder(None, port=port, artifact=artifact, artifact_sha256=model_sha256,
                     artifact_size=artifact_size, usb_serial=serial_no,
                     error=text, duration_s=time.monotonic() - started, outcome=outcome)
        raise
    if recorder is not None:
        rid = recorder(result, port=port, artifact=artifact, artifact_sha256=model_sha256,
                       artifact_size=artifact_size, usb_serial=serial_no)
        if rid is None:
            result.notes.append("the provisioning record could not be written (see the log)")
    return result


INFER_OVERHEAD = 8 + 16
"""SMP header plus the CBOR of ``{"input": bytes}`` around the tensor (at most)."""


def _check_fits_one_request(session: Any, input_bytes: int) -> None:
    """An input tensor goes in one ``infer`` request: say so before sending one too large."""
    try:
        limit = int(session.transport.max_unencoded_size)
    except (AttributeError, TypeError, ValueError):
        return  # a session without that figure: the device answers for itself
    if input_bytes + INFER_OVERHEAD > limit:
        raise InputError(
            f"one input of this model is {input_bytes:,} B, but {session.port} takes SMP "
            f"requests of at most {limit:,} B, so on-target validation cannot send it in "
            "one infer request",
            "validate a model whose input tensor is smaller, or use firmware with a larger "
            "SMP buffer (MCUmgr buf_size)")


# ---- per-layer divergence ------------------------------------------------------------------
def read_operator_output(session: Any, op: int) -> tuple[np.ndarray, TensorSpec | None]:
    """Operator ``op``'s preserved output from the board, read chunk by chunk."""
    first = session.request(rt.Tensor(op=op, off=0))
    spec = first.spec
    data = bytearray(first.data)
    while len(data) < first.total:
        part = session.request(rt.Tensor(op=op, off=len(data)))
        if not part.data:
            raise DeviceError(f"{session.port} sent no data for operator {op} at {len(data)}")
        data += bytes(part.data)
    dtype = np.dtype(spec.dtype if spec is not None else "int8")
    return np.frombuffer(bytes(data[: first.total]), dtype=dtype), spec


def first_divergence(session: Any, sample: np.ndarray, layers: LayerReference) -> dict[str, Any]:
    """Run ``sample`` on the board with preserve on; compare operator by operator with the
    host's ``layers(sample)``; describe the first operator whose output differs."""
    from device_drivers.link.smp_errors import SMPErrorResponse

    raw = np.ascontiguousarray(sample).tobytes()
    answer = session.request(rt.Infer(input=raw, preserve=True))
    if answer.ops is None:
        return {"supported": False, "op": None,
                "note": "the firmware keeps no intermediate tensors (no per-layer report)"}
    host = layers(sample)
    for op in range(min(int(answer.ops), len(host))):
        try:
            device, spec = read_operator_output(session, op)
        except SMPErrorResponse as exc:
            return {"supported": False, "op": None,
                    "note": f"operator {op}'s output could not be read: {exc.message}"}
        ref = np.asarray(host[op].raw).reshape(-1)
        name = host[op].name or (spec.name if spec is not None else "")  # the board's is cut
        if ref.size != device.size:
            return {"supported": True, "op": op, "op_type": host[op].op, "name": name,
                    "elements": int(ref.size), "differing": int(ref.size), "share": 1.0,
                    "max_abs_diff": float("inf"), "max_abs_diff_dequant": float("inf"),
                    "note": f"{device.size} elements on the board, {ref.size} on the host"}
        diff = np.abs(device.astype(np.float64) - ref.astype(np.float64))
        differing = int(np.count_nonzero(diff))
        if differing:
            scale = float(spec.scale) if spec is not None and spec.scale else 0.0
            top = float(diff.max())
            return {"supported": True, "op": op, "op_type": host[op].op, "name": name,
                    "elements": int(ref.size), "differing": differing,
                    "share": differing / ref.size, "max_abs_diff": top,
                    "max_abs_diff_dequant": top * scale if scale else top}
    return {"supported": True, "op": None,
            "note": "every operator's output agreed on the board and the host"}


def tflm_layers(model: bytes) -> LayerReference:
    """The host reference per operator: TFLM's Python interpreter with every tensor kept
    (``kPreserveAllTensors``); each operator's first output, read after one invoke."""
    from tflite_micro.python.tflite_micro import runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    fb = schema.Model.GetRootAsModel(model, 0)
    sg = fb.Subgraphs(0)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    ops: list[tuple[str, int, str]] = []
    for i in range(sg.OperatorsLength()):
        o = sg.Operators(i)
        code = fb.OperatorCodes(o.OpcodeIndex())
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        out = o.Outputs(0) if o.OutputsLength() else -1
        name = sg.Tensors(out).Name().decode() if out >= 0 else ""
        ops.append((names.get(builtin, str(builtin)), out, name))

    def run(sample: np.ndarray) -> list[LayerOutput]:
        interp = runtime.Interpreter.from_bytes(
            model, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
        spec = interp.get_input_details(0)
        interp.set_input(np.asarray(sample).reshape(spec["shape"]).astype(spec["dtype"]), 0)
        interp.invoke()
        return [LayerOutput(op, name, np.array(interp.GetTensor(out, 0)["tensor_data"],
                                               copy=True).reshape(-1))
                for op, out, name in ops]

    return run
