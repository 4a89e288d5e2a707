"""Why tflite-micro cannot load or run a model, by operator, with what to do about it.

``explain(sg, check, hazards)`` turns a failed ``tflm.check_model`` (TFLM's own log, captured
in the sandbox child) into a verdict: the operator (index, builtin name, version), the tensor
concerned, TFLM's message verbatim, the kind of failure and a fix. TFLM's messages mapped:

- ``Didn't find op for builtin opcode 'X'`` / ``Failed to get registration from op code X``:
  no kernel (``missing_op``; ``custom_op`` for CUSTOM / Select-TF "Flex" ops). TFLM finds
  kernels by builtin code only: the op *version* is not checked (a CONV_2D forged to
  version 99 builds), so a newer or older version never is the fix; replacing the op is.
- ``Node X (number N) failed to prepare|invoke``: the kernel refused its tensors. Type
  complaints (``Type INT16 not supported``, ``input->type != output->type``) become
  ``type_mismatch``; anything else ``op_failed`` with the line TFLM printed before.
- ``Failed to allocate ... memory`` / ``Failed starting model allocation``: ``arena`` (the
  model does not fit even the largest arena tried).
- An abort (SIGABRT) while ``analyze.tflm_hazards`` names an op: ``softmax_scale`` - the
  int8 SOFTMAX whose ``beta x input scale <= 2^-26`` trips a TFLITE_CHECK in
  ``PreprocessSoftmaxScaling``.

Decision for the MobileNetV2 case (issue 14 item 3): ``quantize`` does not rewrite such a
model into a loadable one by default. The abort happens only when the calibrated logits
collapse to ~0 (an untrained network, or calibration data that does not excite it): raising
the softmax input scale would make TFLM load a model whose output is a constant uniform
distribution, which looks deployable and is not. So quantize writes the model, reports
``tflm_compatible: false`` and this verdict (op, tensor, scale, TFLM's abort, the fix:
calibrate the trained model on representative data, or drop the softmax head).
"""

from __future__ import annotations

import re
from typing import Any

from model_tools.verify import SubgraphInfo

_MISSING = re.compile(r"Didn't find op for builtin opcode '(\w+)'")
_REGISTRATION = re.compile(r"Failed to get registration from op code (\w+)")
_NODE = re.compile(r"Node (\w+) \(number (\d+)f?\) failed to (prepare|invoke|init)")
_TYPE = re.compile(r"(?:Type|type)\b|not supported", re.I)
_ALLOC = re.compile(r"Failed to allocate|Failed starting model allocation|arena", re.I)

# Known replacements for ops TFLM has no kernel for (what people hit most).
REPLACEMENTS: dict[str, str] = {
    "ATAN2": "compute atan2 outside the model, or approximate it with ops TFLM has",
    "ERF": "use an approximate GELU (tanh form) or ReLU instead of the exact GELU",
    "GELU": "use ReLU / HARD_SWISH, or convert with approximate=True GELU",
    "RFFT2D": "compute the spectrum outside the model (CMSIS-DSP on the device)",
    "UNIDIRECTIONAL_SEQUENCE_RNN": "unroll the RNN in Keras (unroll=True)",
    "WHILE": "unroll the recurrent layer (Keras unroll=True) so no WHILE loop remains",
    "BIDIRECTIONAL_SEQUENCE_LSTM": "use two unrolled LSTMs and CONCATENATION",
    "NON_MAX_SUPPRESSION_V4": "run non-max suppression on the host side of the application",
    "NON_MAX_SUPPRESSION_V5": "run non-max suppression on the host side of the application",
}
_GENERIC_MISSING = ("replace the layer with operators TFLM implements (tflite-micro's "
                    "micro_mutable_op_resolver.h lists them), or compute it outside the model; "
                    "TFLM ignores op versions, so an older or newer version does not help")


def _ops_named(sg: SubgraphInfo, name: str) -> list[Any]:
    if name == "CUSTOM":
        return [op for op in sg.operators if op.op.startswith("CUSTOM")]
    return [op for op in sg.operators if op.op == name]


def _first_input(sg: SubgraphInfo, op: Any) -> int | None:
    i: int
    for i in op.inputs:
        if i >= 0 and not sg.tensors[i].const_bytes:
            return i
    return next((i for i in op.inputs if i >= 0), None)


def _tflm_lines(log: str, fallback: str | None) -> str:
    lines = [ln.strip() for ln in log.splitlines()
             if ln.strip() and not ln.startswith(("E0000", "W0000", "I0000"))]
    return " | ".join(lines[:6]) if lines else (fallback or "")


def _verdict(sg: SubgraphInfo, op: Any | None, tensor: int | None, kind: str, message: str,
             reason: str, fix: str) -> dict[str, Any]:
    t = sg.tensors[tensor] if tensor is not None else None
    where = (f"operator {op.index} {op.op} (version {op.version})" if op is not None
             else "the model")
    tensor_text = (f"; tensor {t.index} {t.name!r} ({t.dtype.lower()} {list(t.shape)})"
                   if t is not None else "")
    text = (f"{where}: {reason}{tensor_text}; tflite-micro: {message or 'no message'}; "
            f"fix: {fix}")
    return {"kind": kind, "op_index": op.index if op is not None else None,
            "op": op.op if op is not None else None,
            "version": op.version if op is not None else None,
            "tensor": tensor, "tensor_name": t.name if t is not None else None,
            "tensor_dtype": t.dtype.lower() if t is not None else None,
            "tflm_message": message, "reason": reason, "fix": fix, "text": text}


def _missing(sg: SubgraphInfo, name: str, message: str, log: str) -> dict[str, Any]:
    ops = _ops_named(sg, name)
    op = ops[0] if ops else None
    if name == "CUSTOM" and op is not None:
        code = op.op.partition(":")[2]
        flex = code.startswith("Flex")
        fix = ("convert without Select TF ops (target_spec.supported_ops = "
               "[TFLITE_BUILTINS_INT8] or TFLITE_BUILTINS): TFLM has no TensorFlow kernels"
               if flex else "register a custom kernel for it in the firmware's op resolver, "
               "or rebuild the model from builtin operators")
        return _verdict(sg, op, _first_input(sg, op), "custom_op", message,
                        f"custom operator {code or '?'} has no TFLM kernel", fix)
    fix = REPLACEMENTS.get(name, _GENERIC_MISSING)
    reason = f"TFLM has no kernel for {name}"
    if len(ops) > 1:
        reason += f" (used by {len(ops)} operators: {', '.join(str(o.index) for o in ops)})"
    return _verdict(sg, op, _first_input(sg, op) if op is not None else None, "missing_op",
                    message, reason, fix)


def explain(sg: SubgraphInfo, check: Any, hazards: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
    """The verdict for a failed ``BuildResult`` ``check`` of the model whose main subgraph is
    ``sg`` (``hazards``: ``analyze.tflm_hazards(sg)``). See the module docstring."""
    log = getattr(check, "log", "") or ""
    message = _tflm_lines(log, check.error)
    m = _MISSING.search(log) or _REGISTRATION.search(log)
    if m:
        return _missing(sg, m.group(1), message, log)
    if hazards and (check.crashed or not _NODE.search(log)):
        h = hazards[0]
        op = sg.operators[h["op_index"]]
        tail = message or str(check.error)
        if check.crashed and check.error and check.error not in tail:
            tail = f"{check.error}: {tail}" if message else check.error
        return _verdict(sg, op, h["tensor"], "softmax_scale", tail, h["reason"], h["fix"])
    n = _NODE.search(log)
    if n:
        index = int(n.group(2))
        op = sg.operators[index] if index < len(sg.operators) else None
        before = [ln.strip() for ln in log[:n.start()].splitlines() if ln.strip()]
        said = before[-1] if before else ""
        tensor = _first_input(sg, op) if op is not None else None
        if _TYPE.search(said):
            kinds = sorted({sg.tensors[i].dtype.lower() for i in (*op.inputs, *op.outputs)
                            if i >= 0} if op is not None else set())
            return _verdict(sg, op, tensor, "type_mismatch", message,
                            f"TFLM's {n.group(1)} kernel does not take these tensor types "
                            f"({', '.join(kinds)}) when it {n.group(3)}s",
                            "quantize full-integer (--mode int8: int8 activations and weights, "
                            "int32 biases) so every operator gets the types TFLM's kernels "
                            "implement; a float or int16 operator left in an int8 model "
                            "(--mode int8-fallback) is the usual cause")
        return _verdict(sg, op, tensor, "op_failed", message,
                        f"TFLM's {n.group(1)} kernel failed to {n.group(3)}: {said or '?'}",
                        "check the operator's parameters and shapes against TFLM's kernel "
                        "(the message above is its own check); replace or reshape the layer")
    if _ALLOC.search(log):
        return _verdict(sg, None, None, "arena", message,
                        f"TFLM could not allocate the model even with a {check.arena}-byte "
                        "arena", "reduce activation sizes (smaller input, fewer channels) or "
                        "check the model for huge intermediate tensors")
    if check.crashed:
        return _verdict(sg, None, None, "crash", message or str(check.error),
                        f"tflite-micro crashed ({check.error}) without naming an operator",
                        "run `tinyops analyze --layers` to find unusual operators; report the "
                        "model if it is well-formed")
    return _verdict(sg, None, None, "unknown", message or str(check.error),
                    f"tflite-micro could not build the model: {check.error}",
                    "see TFLM's message")
