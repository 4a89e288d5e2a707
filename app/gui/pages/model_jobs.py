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
    result = export(path, output, fmt, progress=progress, cancel=cancel, **kwargs)
    return str(result.path)
