"""The Model page's Layers tab: per operator MACs, parameters, activation bytes and, after a
quantize, the int8-vs-float error of its output (SQNR, and the SQNR it loses against its
input). The error is computed by ``app.model_worker.layers_job`` in the model worker process
(TensorFlow never loads in the GUI process); the worst layer is highlighted."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.gui import theme
from app.gui.widgets import DictTable, human_bytes, human_count
from app.gui.workers import Job
from app.model_worker import LAYERS_JOB, ModelWorker

COLUMNS = [("index", "#"), ("op", "Operator"), ("output_shape", "Output"),
           ("params", "Params"), ("macs", "MACs"), ("activation_bytes", "Activations"),
           ("sqnr_db", "SQNR dB"), ("sqnr_drop_db", "SQNR lost dB")]
BAD_DROP_DB = 10.0  # a layer losing more than this is shown in the "bad" colour


def _fmt(v: Any) -> str:
    return "" if v is None else f"{v:.1f}"


def display_rows(layers: list[dict[str, Any]], errors: dict[int, dict[str, Any]] | None
                 ) -> list[dict[str, Any]]:
    """Table rows; ``errors`` (op index -> sqnr fields) is merged only when it belongs to the
    same operator sequence (the quantized model's)."""
    errs = errors or {}
    if errs and [e.get("op") for _, e in sorted(errs.items())] != [
            r["op"] for r in layers if r["index"] in errs]:
        errs = {}
    rows = []
    for r in layers:
        e = errs.get(r["index"], {})
        rows.append({"index": r["index"], "op": r["op"], "output_shape": r["output_shape"],
                     "params": human_count(r.get("params")), "macs": human_count(r.get("macs")),
                     "activation_bytes": human_bytes(r.get("activation_bytes")),
                     "sqnr_db": _fmt(e.get("sqnr_db")),
                     "sqnr_drop_db": _fmt(e.get("sqnr_drop_db"))})
    return rows


class LayersView(QWidget):
    """Drop-in for the page's layer table (``set_rows`` takes the analysis' layers)."""

    def __init__(self, ctx: Any, worker: ModelWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx, self.worker = ctx, worker
        self.table = DictTable(COLUMNS, self)
        self.note = QLabel("Quantize to see each layer's int8 error against the float model.",
                           self)
        self.note.setWordWrap(True)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.table)
        box.addWidget(self.note)
        self.layers: list[dict[str, Any]] = []
        self.errors: dict[int, dict[str, Any]] = {}
        self.worst: dict[str, Any] | None = None

    def set_rows(self, layers: list[dict[str, Any]]) -> None:
        self.layers = list(layers)
        self._show()

    def _show(self) -> None:
        worst = (self.worst or {}).get("index")

        def colour(v: Any) -> Any:
            try:
                return theme.BAD if float(v) > BAD_DROP_DB else None
            except (TypeError, ValueError):
                return None

        rows = display_rows(self.layers, self.errors)
        self.table.set_rows(rows, {"sqnr_drop_db": colour})
        if self.worst and any(r["index"] == worst for r in self.layers):
            w = self.worst
            self.note.setText(f"Largest int8 error added: operator {w['index']} {w['op']} "
                              f"({w['sqnr_drop_db']:.1f} dB SQNR lost).")

    def compare(self, float_model: str, quantized: str, calib: str) -> Job | None:
        """Compute each layer's int8 error in the model worker; shown when it arrives."""
        if not (float_model and quantized and calib):
            return None
        self.note.setText("Measuring each layer's int8 error on the calibration data…")
        job = self.ctx.runner.submit(self.worker.call, LAYERS_JOB, float_model, quantized,
                                     calib, name="layers")
        job.succeeded.connect(self.show_report)
        job.failed.connect(lambda err: self.note.setText(f"per-layer error: {err.message}"))
        return job

    def show_report(self, report: dict[str, Any]) -> None:
        self.errors = {r["index"]: r for r in report.get("layers", [])
                       if r.get("sqnr_db") is not None or r.get("sqnr_drop_db") is not None}
        self.worst = report.get("worst")
        if not self.layers:
            self.layers = report.get("layers", [])
        self._show()
