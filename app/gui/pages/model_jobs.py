"""The Model page's jobs: plain functions, run in the model worker process.

The page sends ``analyze_job``, ``quantize_job`` and ``export_job`` to
:class:`app.model_worker.ModelWorker` (a child process), so TensorFlow is never imported
in the GUI process; the first job in a fresh worker says it is loading TensorFlow.
Quantize and export write a model-operation provisioning record (``MODEL_OPERATIONS``).
"""

from __future__ import annotations

import hashlib
import sys
import time
from pathlib import Path
from typing import Any

from device_drivers.errors import Cancelled, InputError

MODEL_FILTER = "Models (*.tflite *.keras *.h5);;All files (*)"
DATA_FILTER = "Data (*.npz *.npy *.csv);;All files (*)"


def example_dir() -> Path:
    from device_drivers import paths

    return paths.resources_dir() / "examples" / "vibration"


def board_choices() -> list[tuple[str, str]]:
    """(id, display name) of every registry board that has memory figures, virtual first."""
    from device_drivers.boards.registry import load_registry

    out = []
    for b in load_registry():
        if getattr(b, "flash", 0) and getattr(b, "ram", 0):
            out.append((b.id, f"{b.name} ({b.id})"))
    out.sort(key=lambda x: (x[0] != "virtual", x[1].lower()))
    return out


def _limits(board_id: str | None) -> Any:
    if not board_id:
        return None
    from device_drivers.boards.registry import get_board
    from model_tools.analyze import BoardLimits

    return BoardLimits.from_board(get_board(board_id))


def read_labels(model_path: str | Path) -> list[str] | None:
    """Labels from ``labels.txt`` (or ``<stem>.labels.txt``) beside the model, if any."""
    p = Path(model_path)
    for candidate in (p.with_name(p.stem + ".labels.txt"), p.with_name("labels.txt")):
        if candidate.is_file():
            labels = [s.strip() for s in candidate.read_text(encoding="utf-8").splitlines()]
            labels = [s for s in labels if s]
            if labels:
                return labels
    return None


def guess_data(model_path: str | Path) -> tuple[str | None, str | None]:
    """Calibration and evaluation files beside a model (``calib.*``, ``eval.*``), if any."""
    folder = Path(model_path).parent
    found: list[str | None] = []
    for stem in ("calib", "eval"):
        hits = [folder / f"{stem}{ext}" for ext in (".npz", ".npy", ".csv")]
        found.append(next((str(h) for h in hits if h.is_file()), None))
    return found[0], found[1]


def inside_package(path: str | Path) -> bool:
    """Whether ``path`` is inside the installed package's ``resources/`` (never written)."""
    from device_drivers import paths

    try:
        Path(path).expanduser().resolve().relative_to(paths.resources_dir().resolve())
    except ValueError:
        return False
    return True


def default_output(model_path: str, mode: str) -> str:
    """Where a quantized model goes unless the user says otherwise: beside the input with
    a ``_<mode>`` suffix, or (for the bundled example, inside the package) in the user's
    TinyOps models folder."""
    from device_drivers import paths

    src = Path(model_path)
    name = f"{src.stem}_{mode.replace('-', '_')}.tflite"
    folder = src.parent
    if inside_package(src):
        folder = paths.data_dir() / "models"
    return str(folder / name)


def _load_tf_if_needed(path: str, progress: Any) -> None:
    """Float models need TensorFlow: say so the first time this process loads it."""
    if Path(path).suffix.lower() == ".tflite" or "tensorflow" in sys.modules:
        return
    if progress:
        progress(0.0, "loading TensorFlow (first time, ~10 s)")
    from model_tools.convert import import_tf

    import_tf()


def _record(operation: str, started: float, output: Path | None, source: str,
            error: str | None = None, **details: Any) -> None:
    from fleet_ops.records import add_record, model_record

    digest = size = None
    if output is not None and output.is_file():
        data = output.read_bytes()
        digest, size = hashlib.sha256(data).hexdigest(), len(data)
    add_record(model_record(operation, "failed" if error else "ok",
                            artifact=str(output) if output else None, artifact_sha256=digest,
                            artifact_size=size, duration_s=time.monotonic() - started,
                            error=error, details={"source": source, **details}))


def analyze_job(path: str, board_id: str | None, progress: Any = None,
                cancel: Any = None) -> dict[str, Any]:
    from model_tools.analyze import analyze

    if not path:
        raise InputError("no model file chosen", "pick a .tflite, .keras or .h5 file")
    _load_tf_if_needed(path, progress)
    result = analyze(path, board=_limits(board_id), progress=progress, cancel=cancel)
    result["labels"] = read_labels(path)
    return result


def check_output(path: str, output: str, overwrite: bool) -> Path:
    """Refuse an output that is missing, the input itself, inside the package, or an
    existing file the user did not agree to replace."""
    if not output:
        raise InputError("no output file chosen", "pick where the quantized model goes")
    out = Path(output).expanduser()
    if out.resolve() == Path(path).expanduser().resolve():
        raise InputError("the output would replace the input model",
                         "choose another file name for the quantized model")
    if inside_package(out):
        raise InputError(f"{out} is inside TinyOps's installed files",
                         "save the quantized model somewhere of your own (Save as…)")
    if out.exists() and not overwrite:
        raise InputError(f"{out.name} exists already", "choose another name, or agree to "
                         "replace it")
    return out


def quantize_job(path: str, calib: str, eval_data: str | None, mode: str,
                 output: str = "", overwrite: bool = False, progress: Any = None,
                 cancel: Any = None) -> dict[str, Any]:
    from model_tools.quantize import quantize

    if not path:
        raise InputError("no model file chosen", "pick the float .keras/.h5 model first")
    if not calib:
        raise InputError("quantization needs calibration data",
                         "pick a .npz/.npy/.csv with typical inputs (a few hundred samples)")
    out = check_output(path, output, overwrite)
    started = time.monotonic()
    _load_tf_if_needed(path, progress)
    try:
        report = quantize(path, calib, eval_data=eval_data or None, mode=mode, output=out,
                          labels=read_labels(path), progress=progress, cancel=cancel)
    except Exception as exc:
        if not isinstance(exc, Cancelled):
            _record("quantize", started, None, path, error=str(exc), mode=mode)
        raise
    _record("quantize", started, out, path, mode=mode,
            source_sha256=report.source_sha256)
    return report.to_dict()


def export_job(path: str, fmt: str, output: str, board_id: str | None = None,
               progress: Any = None, cancel: Any = None) -> str:
    """Export a .tflite as C source / Arduino library (folders) or a UF2 image (a file);
    a UF2 needs a board whose registry entry has a UF2 family and a model region."""
    from model_tools.export import export

    if not path:
        raise InputError("no model to export", "pick or quantize a .tflite model first")
    kwargs: dict[str, Any] = {}
    if fmt == "uf2":
        board = None
        if board_id:
            from device_drivers.boards.registry import get_board

            board = get_board(board_id)
        region = getattr(board, "model_region", None)
        if board is None or region is None:
            raise InputError("a UF2 export needs a UF2 board (its family and model region)",
                             "pick a UF2 board (RP2040, nRF52840, SAMD51) in the Board list")
        kwargs.update(uf2_address=region.address, uf2_family=board.uf2_family,
                      region_size=region.size)
    started = time.monotonic()
    try:
        result = export(path, output, fmt, progress=progress, cancel=cancel, **kwargs)
    except Exception as exc:
        if not isinstance(exc, Cancelled):
            _record("export", started, None, path, error=str(exc), format=fmt)
        raise
    written = Path(result.path)
    _record("export", started, written if written.is_file() else None, path, format=fmt,
            board=board_id, files=[str(f) for f in getattr(result, "files", [])][:20])
    return str(result.path)
