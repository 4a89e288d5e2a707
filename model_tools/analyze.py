"""What a model needs on a microcontroller, and whether it fits a given board.

``analyze(path, board=...)`` returns a JSON-ready dict: inputs/outputs (dtype, shape,
quantization), operators with counts and TFLM support (ground truth: tflite-micro builds the
model or names the operator that fails), parameters, MACs per layer, flash size, the exact
minimum tensor arena (``tflm.measure_arena``) or a static estimate, and with a board a fit
verdict against its flash and RAM minus the runtime's own reserve.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_tools.errors import Cancelled
from model_tools.loading import LoadedModel, load_model
from model_tools.tflm import TflmProcess, check_model, measure_arena, tflm_available
from model_tools.verify import OperatorInfo, SubgraphInfo, TensorInfo, TfliteModel
from tinyops_base.progress import Progress

TIGHT_RATIO = 0.8  # above 80 % of what is left for the model: "tight"
# The one arena figure (``arena_bytes``) that analyze, the quantize report, the model card,
# the export header and the fit verdict all show. Defined here, once:
ARENA_DEFINITION = (
    "TFLM's minimum tensor arena: the smallest size, a multiple of 16 bytes, with which "
    "tflite-micro builds the model and invokes it once (bisection in a child process on this "
    "64-bit host). No margin is added: a 32-bit MCU needs a little less (smaller pointers in "
    "TFLM's bookkeeping), and the runtime's own RAM is the board's runtime reserve, counted "
    "separately in the fit verdict.")
ESTIMATE_DEFINITION = ("static estimate (tflite-micro unavailable or unable to build the model): "
                       "live activations at their peak plus TFLM's bookkeeping")


def arena_figure(nbytes: int, method: str) -> dict[str, Any]:
    """``arena_bytes`` / ``arena_method`` / ``arena_note`` as every report carries them.
    ``method`` is ``measured`` (TFLM's minimum, see ``ARENA_DEFINITION``) or ``estimate``."""
    if method not in ("measured", "estimate"):
        raise ValueError(f"unknown arena method {method!r}")
    return {"arena_bytes": int(nbytes), "arena_method": method,
            "arena_note": ARENA_DEFINITION if method == "measured" else ESTIMATE_DEFINITION}
_MAC_OPS = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV", "BATCH_MATMUL",
            "CONV_3D"}


@dataclass(frozen=True)
class BoardLimits:
    """A board's memory as plain numbers (model_tools does not read the board registry)."""

    id: str
    flash: int
    ram: int
    reserve_flash: int = 0
    reserve_ram: int = 0
    name: str = ""

    @classmethod
    def from_board(cls, board: Any) -> BoardLimits:
        """From any object with ``id, flash, ram, runtime_reserve`` (an object with
        ``flash``/``ram`` attributes, or a dict), e.g. the registry's ``Board``."""
        reserve = getattr(board, "runtime_reserve", None) or {}
        get = reserve.get if isinstance(reserve, dict) else lambda k, d=0: getattr(reserve, k, d)
        return cls(str(board.id), int(board.flash), int(board.ram), int(get("flash", 0) or 0),
                   int(get("ram", 0) or 0), str(getattr(board, "name", "") or ""))

    @property
    def flash_available(self) -> int:
        return max(self.flash - self.reserve_flash, 0)

    @property
    def ram_available(self) -> int:
        return max(self.ram - self.reserve_ram, 0)


def fit_verdict(flash_needed: int, ram_needed: int, board: BoardLimits,
                tight_ratio: float = TIGHT_RATIO) -> dict[str, Any]:
    """``fits`` / ``tight`` / ``does not fit`` for a model of ``flash_needed`` bytes needing an
    arena of ``ram_needed`` bytes, against what the runtime leaves free on ``board``."""
    parts = {"flash": (flash_needed, board.flash_available),
             "ram": (ram_needed, board.ram_available)}
    detail: dict[str, Any] = {}
    worst = "fits"
    reasons = []
    for name, (need, avail) in parts.items():
        use = need / avail if avail else float("inf")
        if need > avail:
            status = "does not fit"
            reasons.append(f"{name}: needs {need} B, {avail} B free after the runtime")
        elif use > tight_ratio:
            status = "tight"
            reasons.append(f"{name}: {use:.0%} of the {avail} B left for the model")
        else:
            status = "fits"
        detail[name] = {"needed": need, "available": avail, "total": getattr(board, name),
                        "runtime_reserve": getattr(board, f"reserve_{name}"),
                        "use": round(use, 4) if use != float("inf") else None, "status": status}
        order = ("fits", "tight", "does not fit")
        worst = max(worst, status, key=order.index)
    return {"board": board.id, "board_name": board.name, "verdict": worst,
            "reason": "; ".join(reasons) or "room to spare on flash and RAM", **detail}


def _elements(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= max(d, 1)
    return n


def op_macs(op: OperatorInfo, tensors: list[TensorInfo]) -> int:
    """Multiply-accumulates of one operator (0 for ops without a MAC inner loop)."""
    if op.op not in _MAC_OPS or not op.outputs:
        return 0
    out = tensors[op.outputs[0]].shape
    ins = [tensors[i] if i >= 0 else None for i in op.inputs]
    try:
        if op.op == "CONV_2D" and ins[1] is not None:
            _, kh, kw, cin = ins[1].shape
            return _elements(out) * kh * kw * cin
        if op.op == "DEPTHWISE_CONV_2D" and ins[1] is not None:
            _, kh, kw, _ = ins[1].shape
            return _elements(out) * kh * kw
        if op.op == "FULLY_CONNECTED" and ins[1] is not None:
            return _elements(out) * ins[1].shape[-1]
        if op.op == "TRANSPOSE_CONV" and ins[1] is not None and ins[2] is not None:
            cout, kh, kw, _ = ins[1].shape
            return _elements(ins[2].shape) * kh * kw * cout
        if op.op == "BATCH_MATMUL" and ins[0] is not None:
            return _elements(out) * ins[0].shape[-1]
        if op.op == "CONV_3D" and ins[1] is not None:
            kd, kh, kw, cin, _ = ins[1].shape
            return _elements(out) * kd * kh * kw * cin
    except (ValueError, IndexError):
        return 0
    return 0


def _tensor_dict(t: TensorInfo) -> dict[str, Any]:
    q = None
    if t.scales:
        q = {"scale": t.scales[0] if len(t.scales) == 1 else list(t.scales),
             "zero_point": t.zero_points[0] if len(t.zero_points) == 1 else list(t.zero_points)}
    return {"name": t.name, "dtype": t.dtype.lower(), "shape": list(t.shape), "bytes": t.nbytes,
            "quantization": q}


def static_arena_estimate(sg: SubgraphInfo) -> int:
    """Peak of live activation tensors over the operator sequence (16-byte aligned) plus
    TFLM's per-tensor / per-node bookkeeping as measured on this host. An estimate."""
    tensors, ops = sg.tensors, sg.operators
    first: dict[int, int] = {i: -1 for i in sg.inputs}
    last: dict[int, int] = {i: len(ops) for i in sg.outputs}
    for k, op in enumerate(ops):
        for i in op.outputs:
            first.setdefault(i, k)
        for i in op.inputs:
            if i >= 0:
                last[i] = max(last.get(i, k), k)
    peak = 0
    for k in range(-1, len(ops) + 1):
        live = 0
        for i, t in enumerate(tensors):
            if t.const_bytes or i not in first:
                continue
            if first[i] <= k <= last.get(i, first[i]):
                live += (t.nbytes + 15) // 16 * 16
        peak = max(peak, live)
    # eval tensors, memory-planner scratch, node structs, per-op persistent data, I/O tensors
    bookkeeping = (24 + 32) * len(tensors) + (64 + 64) * len(ops) + 64 * (
        len(sg.inputs) + len(sg.outputs)) + 256
    return (peak + bookkeeping + 15) // 16 * 16


# TFLM's int8 SOFTMAX (softmax_common.cc -> PreprocessSoftmaxScaling, kScaledDiffIntegerBits 5)
# needs beta * input scale * 2**26 > 1; otherwise a TFLITE_CHECK aborts the whole process.
SOFTMAX_MIN_BETA_SCALE = 2.0 ** -26


def tflm_hazards(sg: SubgraphInfo) -> list[dict[str, Any]]:
    """Operators whose parameters make TFLM abort (not fail) while preparing them, found from
    the model alone: op index, builtin name, version, tensor, the reason and what to do."""
    found = []
    for op in sg.operators:
        if op.op != "SOFTMAX" or not op.inputs or op.inputs[0] < 0:
            continue
        t = sg.tensors[op.inputs[0]]
        beta = float(getattr(op.options, "beta", 0.0) or 0.0)
        if t.dtype not in ("INT8", "UINT8") or not t.scales:
            continue
        if beta * t.scales[0] <= SOFTMAX_MIN_BETA_SCALE:
            found.append({
                "op_index": op.index, "op": op.op, "version": op.version, "tensor": t.index,
                "reason": (f"its input tensor {t.index} ({t.name!r}) has scale "
                           f"{t.scales[0]:.3g} and beta {beta:g}; TFLM's int8 softmax needs "
                           f"beta x scale > 2^-26 ({SOFTMAX_MIN_BETA_SCALE:.3g}) and aborts "
                           "otherwise (TFLITE_CHECK in PreprocessSoftmaxScaling)"),
                "fix": ("the logits' calibrated range collapsed to about zero: quantize the "
                        "trained model with representative calibration data, or drop the "
                        "softmax head and take the argmax of the logits"),
            })
    return found


def _params(sg: SubgraphInfo) -> int:
    seen: set[int] = set()
    total = 0
    for op in sg.operators:
        for i in op.inputs:
            if i < 0 or i in seen:
                continue
            t = sg.tensors[i]
            if t.const_bytes and (op.op in _MAC_OPS or t.dtype not in ("INT32", "INT64")):
                seen.add(i)
                total += _elements(t.shape) if t.shape else 1
    return total


def analyze_tflite(model: TfliteModel, *, board: BoardLimits | None = None,
                   measure: bool = True, progress: Progress | None = None,
                   cancel: Any = None) -> dict[str, Any]:
    """Analysis of a verified TFLite model (see the module docstring for the keys)."""
    sg = model.main
    t0 = time.perf_counter()
    layers = []
    for op in sg.operators:
        outs = [sg.tensors[i] for i in op.outputs]
        params = sum(_elements(sg.tensors[i].shape) for i in op.inputs
                     if i >= 0 and sg.tensors[i].const_bytes)
        layers.append({"index": op.index, "op": op.op, "macs": op_macs(op, sg.tensors),
                       "params": params, "output_shape": list(outs[0].shape) if outs else [],
                       "activation_bytes": sum(t.nbytes for t in outs)})
    counts = Counter(op.op for op in sg.operators)
    estimate = static_arena_estimate(sg)
    result: dict[str, Any] = {
        "inputs": [_tensor_dict(sg.tensors[i]) for i in sg.inputs],
        "outputs": [_tensor_dict(sg.tensors[i]) for i in sg.outputs],
        "subgraphs": len(model.subgraphs),
        "tensors": len(sg.tensors),
        "params": _params(sg),
        "macs": sum(layer["macs"] for layer in layers),
        "flash_bytes": len(model.data),
        "layers": layers,
        "arena_estimate": estimate,
    }
    hazards = tflm_hazards(sg)
    result["tflm_hazards"] = hazards
    support: dict[str, bool | None] = dict.fromkeys(counts)
    arena: int | None = None
    arena_method = "estimate"
    tflm_error = None
    failing = None
    verdict: dict[str, Any] | None = None
    if tflm_available():
        with TflmProcess(model.data) as proc:
            if progress:
                progress(0.05, "building the model in tflite-micro")
            check = check_model(model.data, estimate * 4, proc)
            if check.ok:
                support = dict.fromkeys(counts, True)
                if measure:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
                    sub = (lambda f, s: progress(0.1 + 0.9 * f, s)) if progress else None
                    m = measure_arena(model.data, progress=sub, cancel=cancel, proc=proc,
                                      upper=check.arena)
                    arena, arena_method = m.bytes, "measured"
                    result["arena_probes"] = m.probes
            else:
                from model_tools.tflm_verdict import explain

                verdict = explain(sg, check, hazards)
                tflm_error, failing = verdict["text"], verdict["op"] or check.failing_op
                for op in sg.operators:
                    if op.op == failing:
                        support[op.op] = False
                        break
                    support[op.op] = True
    else:
        tflm_error = "tflite-micro is not installed: arena is a static estimate"
    result.update({
        "ops": [{"op": name, "count": n, "tflm": support.get(name)} for name, n in counts.items()],
        "tflm_compatible": None if not tflm_available() else tflm_error is None,
        "tflm_error": tflm_error,
        "failing_op": failing,
        "tflm_verdict": verdict,
        **arena_figure(arena if arena is not None else estimate, arena_method),
        "seconds": round(time.perf_counter() - t0, 3),
    })
    if board is not None:
        result["fit"] = fit_verdict(len(model.data), result["arena_bytes"], board)
        from model_tools.latency import estimate_latency

        dtype = result["inputs"][0]["dtype"] if result["inputs"] else "int8"
        result["latency"] = estimate_latency(
            result["macs"], board=board.id, dtype="int8" if dtype in ("int8", "uint8",
                                                                      "int16") else dtype)
    if progress:
        progress(1.0, "analysis done")
    return result


def analyze(path: str | Path | LoadedModel, *, board: BoardLimits | None = None,
            measure: bool = True, progress: Progress | None = None,
            cancel: Any = None) -> dict[str, Any]:
    """Analyze a model file. Keras / SavedModel inputs are converted to a float TFLite model
    first (what flashing them unquantized would mean)."""
    loaded = path if isinstance(path, LoadedModel) else load_model(path)
    if loaded.tflite is not None:
        tfl = loaded.tflite
    else:
        from model_tools.convert import convert
        from model_tools.verify import verify_tflite

        if progress:
            progress(0.0, "converting to a float TFLite model")
        tfl = verify_tflite(convert(loaded, "float", cancel=cancel))
    result = analyze_tflite(tfl, board=board, measure=measure, progress=progress, cancel=cancel)
    from model_tools.availability import model_features, unavailable

    return {"model": str(loaded.path), "kind": loaded.kind, "sha256": loaded.sha256,
            "file_size": loaded.size,
            "converted": None if loaded.tflite is not None else "float TFLite (unquantized)",
            **result, "unavailable": unavailable(model_features())}
