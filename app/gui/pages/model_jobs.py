"""The Model page's jobs: plain functions run on worker threads.

``model_tools`` (and through it TensorFlow) is imported here, inside the functions, so the
window opens without paying for TensorFlow; the first analyze or quantize pays instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from device_drivers.errors import InputError

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


def analyze_job(path: str, board_id: str | None, progress: Any = None,
                cancel: Any = None) -> dict[str, Any]:
    from model_tools.analyze import analyze

    if not path:
        raise InputError("no model file chosen", "pick a .tflite, .keras or .h5 file")
    result = analyze(path, board=_limits(board_id), progress=progress, cancel=cancel)
    result["labels"] = read_labels(path)
    return result


def quantize_job(path: str, calib: str, eval_data: str | None, mode: str,
                 output: str | None = None, progress: Any = None,
                 cancel: Any = None) -> dict[str, Any]:
    from model_tools.quantize import quantize

    if not path:
        raise InputError("no model file chosen", "pick the float .keras/.h5 model first")
    if not calib:
        raise InputError("quantization needs calibration data",
                         "pick a .npz/.npy/.csv with typical inputs (a few hundred samples)")
    report = quantize(path, calib, eval_data=eval_data or None, mode=mode,
                      output=output or None, labels=read_labels(path), progress=progress,
                      cancel=cancel)
    return report.to_dict()


def export_job(path: str, fmt: str, output: str, board_id: str | None = None,
               progress: Any = None, cancel: Any = None) -> str:
    try:
        from model_tools import export as exporter  # type: ignore[attr-defined]
    except ImportError as exc:
        raise InputError("exporting is not available in this build",
                         "update TinyOps, or use `tinyops export`") from exc
    fn = getattr(exporter, "export", None)
    if fn is None:
        raise InputError("exporting is not available in this build", "update TinyOps")
    kwargs: dict[str, Any] = {"progress": progress, "cancel": cancel}
    if board_id:
        kwargs["board"] = board_id
    import inspect

    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in kwargs.items() if k in params}
    if "fmt" in params:
        kwargs["fmt"] = fmt
    else:
        kwargs["format"] = fmt
    result = fn(path, output=output, **kwargs) if "output" in params else fn(path, output,
                                                                               **kwargs)
    return str(getattr(result, "path", None) or result or output)
