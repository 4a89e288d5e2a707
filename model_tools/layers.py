"""The per-layer report (``tinyops analyze MODEL --layers``, the Model page's Layers tab).

Per operator: MACs, parameters, activation bytes (its output tensors), and - given the float
model, its quantized version and calibration samples - how far the quantized operator's output
is from the float one on those samples: SQNR in dB (signal power of the float output over the
power of the difference) and RMSE, plus ``sqnr_drop_db``, the SQNR the operator loses
relative to its input (so the layer that costs the accuracy stands out, not every layer after
it). Intermediate tensors come from LiteRT's interpreter (:mod:`model_tools.host_interpreter`)
run with ``experimental_preserve_all_tensors=True`` on both models; operators are matched by
output tensor name, else by their order among operators of the same type.

TensorFlow is imported only when the float model is a Keras model or SavedModel (to convert it).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from model_tools.analyze import _MAC_OPS, _elements, op_macs
from model_tools.errors import Cancelled, ModelInputError
from model_tools.host_interpreter import make_interpreter
from model_tools.verify import SubgraphInfo, TensorInfo, TfliteModel, verify_tflite
from tinyops_base.progress import Progress

MAX_SAMPLES = 32
_SKIP = {"QUANTIZE", "DEQUANTIZE"}


def _op_params(sg: SubgraphInfo, op: Any) -> int:
    total = 0
    for i in op.inputs:
        t = sg.tensors[i] if i >= 0 else None
        if t is not None and t.const_bytes and (op.op in _MAC_OPS
                                                or t.dtype not in ("INT32", "INT64")):
            total += _elements(t.shape) if t.shape else 1
    return total


def layer_table(model: TfliteModel) -> list[dict[str, Any]]:
    """One row per operator of the main subgraph: index, op, version, name (its first output
    tensor's), output shape and dtype, MACs, parameters, activation bytes."""
    sg = model.main
    rows = []
    for op in sg.operators:
        outs = [sg.tensors[i] for i in op.outputs if i >= 0]
        rows.append({"index": op.index, "op": op.op, "version": op.version,
                     "name": outs[0].name if outs else "",
                     "output_shape": list(outs[0].shape) if outs else [],
                     "dtype": outs[0].dtype.lower() if outs else "",
                     "macs": op_macs(op, sg.tensors), "params": _op_params(sg, op),
                     "activation_bytes": sum(t.nbytes for t in outs)})
    return rows


def _run_all(data: bytes, x: np.ndarray, cancel: Any) -> dict[int, list[np.ndarray]]:
    """Every tensor that has a value after each sample (index -> one array per sample)."""
    interp, _ = make_interpreter(data, preserve_all_tensors=True)
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    found: dict[int, list[np.ndarray]] = {}
    for sample in x:
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        s = sample.reshape(inp["shape"]).astype(np.float32)
        if inp["dtype"] != np.float32:
            scale, zp = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            s = np.clip(np.round(s / scale) + zp, info.min, info.max)
        interp.set_tensor(inp["index"], s.astype(inp["dtype"]))
        interp.invoke()
        for d in interp.get_tensor_details():
            try:
                value = interp.get_tensor(d["index"])
            except ValueError:
                continue
            found.setdefault(d["index"], []).append(np.array(value, copy=True))
    return found


def _dequant(raw: np.ndarray, t: TensorInfo) -> np.ndarray:
    if t.dtype in ("FLOAT32", "FLOAT16") or not t.scales:
        return raw.astype(np.float64)
    return (raw.astype(np.float64) - t.zero_points[0]) * t.scales[0]


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """10 log10(power of ``ref`` / power of ``ref - test``); inf when they are equal."""
    noise = float(np.sum((ref - test) ** 2))
    signal = float(np.sum(ref ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def _match(fsg: SubgraphInfo, qsg: SubgraphInfo) -> dict[int, int]:
    """quantized op index -> float op index (output tensor name, else order within type)."""
    by_name = {fsg.tensors[op.outputs[0]].name: op.index for op in fsg.operators if op.outputs}
    by_type: dict[str, list[int]] = {}
    for op in fsg.operators:
        by_type.setdefault(op.op, []).append(op.index)
    seen: dict[str, int] = {}
    out = {}
    for op in qsg.operators:
        if op.op in _SKIP or not op.outputs:
            continue
        k = seen.get(op.op, 0)
        seen[op.op] = k + 1
        name = qsg.tensors[op.outputs[0]].name
        if name in by_name and fsg.operators[by_name[name]].op == op.op:
            out[op.index] = by_name[name]
        elif k < len(by_type.get(op.op, [])):
            out[op.index] = by_type[op.op][k]
    return out


def quantization_error(float_model: TfliteModel, quant_model: TfliteModel, x: np.ndarray, *,
                       cancel: Any = None) -> dict[int, dict[str, Any]]:
    """Quantized op index -> ``{float_index, sqnr_db, rmse, sqnr_drop_db}`` on samples ``x``."""
    fsg, qsg = float_model.main, quant_model.main
    fvals = _run_all(float_model.data, x, cancel)
    qvals = _run_all(quant_model.data, x, cancel)
    errors: dict[int, dict[str, Any]] = {}
    tensor_sqnr: dict[int, float] = {}
    for qi, fi in _match(fsg, qsg).items():
        qt = qsg.tensors[qsg.operators[qi].outputs[0]]
        ft = fsg.tensors[fsg.operators[fi].outputs[0]]
        if qt.index not in qvals or ft.index not in fvals:
            continue
        ref = np.stack(fvals[ft.index]).astype(np.float64)
        got = _dequant(np.stack(qvals[qt.index]), qt)
        if ref.shape != got.shape:
            continue
        s = sqnr_db(ref, got)
        tensor_sqnr[qt.index] = s
        errors[qi] = {"float_index": fi, "sqnr_db": _num(s),
                      "rmse": float(np.sqrt(np.mean((ref - got) ** 2)))}
    for qi, e in errors.items():
        ins = [tensor_sqnr[i] for i in qsg.operators[qi].inputs if i in tensor_sqnr]
        before = min(ins) if ins else math.inf
        own = e["sqnr_db"] if e["sqnr_db"] is not None else math.inf
        e["sqnr_drop_db"] = _num(before - own) if math.isfinite(before) else None
    return errors


def _num(v: float) -> float | None:
    return round(v, 2) if math.isfinite(v) else None


def _as_tflite(path: str | Path, cancel: Any) -> TfliteModel:
    from model_tools.loading import load_model

    loaded = load_model(path)
    if loaded.tflite is not None:
        return loaded.tflite
    from model_tools.convert import convert

    return verify_tflite(convert(loaded, "float", cancel=cancel))


def layers_report(model: str | Path, *, quantized: str | Path | None = None,
                  calib: str | Path | None = None, max_samples: int = MAX_SAMPLES,
                  progress: Progress | None = None, cancel: Any = None) -> dict[str, Any]:
    """The per-layer report of ``model`` (.tflite, .keras, ...). With ``quantized`` (its
    int8 .tflite) and ``calib`` (samples), the layers are the quantized model's, each with
    its error against the float model; ``worst`` names the op with the largest SQNR drop."""
    if progress:
        progress(0.0, "reading the model")
    base = _as_tflite(model, cancel)
    if quantized is None:
        if progress:
            progress(1.0, "layers done")
        return {"model": str(model), "layers": layer_table(base), "error_metric": None}
    if calib is None:
        raise ModelInputError("the per-layer error needs calibration samples",
                              "pass --calib DATA (the data the model was quantized with)")
    from model_tools.data import load_dataset

    qm = verify_tflite(Path(quantized).read_bytes())
    shape = base.main.tensors[base.main.inputs[0]].shape[1:]
    x = load_dataset(calib, input_shape=shape).x[:max_samples]
    if progress:
        progress(0.2, f"running float and int8 models on {len(x)} samples")
    errors = quantization_error(base, qm, x, cancel=cancel)
    rows = layer_table(qm)
    for row in rows:
        row.update(errors.get(row["index"], {"sqnr_db": None, "rmse": None,
                                             "sqnr_drop_db": None}))
    drops = [r for r in rows if r.get("sqnr_drop_db") is not None]
    worst = max(drops, key=lambda r: r["sqnr_drop_db"]) if drops else None
    if progress:
        progress(1.0, "layers done")
    return {"model": str(quantized), "float_model": str(model), "layers": rows,
            "samples": len(x), "error_metric": "SQNR dB (float output / int8 error)",
            "worst": {"index": worst["index"], "op": worst["op"],
                      "sqnr_drop_db": worst["sqnr_drop_db"]} if worst else None}
