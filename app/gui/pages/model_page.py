"""The Model page: pick a model, see whether it fits the board, quantize it, export it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.gui.context import AppContext
from app.gui.pages import model_jobs as jobs
from app.gui.pages import model_results as views
from app.gui.pages.layers_view import LayersView
from app.gui.widgets import DictTable, FitGauge, KeyValues
from app.gui.workers import Job, JobError
from app.model_worker import ModelWorker
from device_drivers.errors import TinyOpsError

MODES = ("int8", "int8-fallback", "dynamic", "float16")
JOBS = "app.gui.pages.model_jobs:"  # run in the model worker process (TensorFlow lives there)


class ModelPage(QWidget):
    artifact_ready = Signal(str)  # a quantized .tflite to offer on the Flash page

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.analysis: dict[str, Any] | None = None
        self.report: dict[str, Any] | None = None
        self._job: Job | None = None
        self.worker = ModelWorker()
        self._output_auto = True  # the output follows the model and mode until edited

        self.path = QLineEdit(self)
        self.path.setPlaceholderText("Model file (.tflite, .keras, .h5)")
        self.path.returnPressed.connect(self.analyze)
        self.path.textChanged.connect(lambda _: self._update_output())
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self.browse)
        example = QPushButton("Example", self)
        example.setToolTip("Use the bundled vibration example model")
        example.clicked.connect(self.use_example)
        self.board = QComboBox(self)
        self.board.setMinimumWidth(240)
        self.board.setToolTip("The board to check the model against")
        self.analyze_button = QPushButton("Analyze", self)
        self.analyze_button.setProperty("role", "primary")
        self.analyze_button.clicked.connect(self.analyze)
        top = QHBoxLayout()
        top.addWidget(QLabel("Model", self))
        top.addWidget(self.path, 1)
        top.addWidget(browse)
        top.addWidget(example)
        top.addWidget(QLabel("Board", self))
        top.addWidget(self.board)
        top.addWidget(self.analyze_button)

        self.summary = KeyValues("Model", self)
        self.summary.set_rows([("File", "—")])
        self.fit = FitGauge(self)
        self.fit.show_fit(None)
        self.ops = DictTable([("op", "Operator"), ("count", "Count"), ("tflm", "TFLM")], self)
        self.tensors = DictTable([("role", "Tensor"), ("name", "Name"), ("dtype", "Type"),
                                  ("shape", "Shape"), ("quant", "Quantization")], self)
        self.layers = LayersView(ctx, self.worker, self)  # int8 error via the model worker
        details = QTabWidget(self)
        details.addTab(self.ops, "Operators")
        details.addTab(self.tensors, "Inputs / outputs")
        details.addTab(self.layers, "Layers")

        upper = QWidget(self)
        grid = QGridLayout(upper)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.addWidget(self.summary, 0, 0)
        grid.addWidget(self.fit, 0, 1)
        grid.addWidget(details, 1, 0, 1, 2)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.setChildrenCollapsible(False)
        split.addWidget(upper)
        split.addWidget(self._build_quantize())
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        self.progress = QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress_label = QLabel(self)
        self.progress_label.setProperty("role", "muted")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        prow = QHBoxLayout()
        prow.addWidget(self.progress_label, 1)
        prow.addWidget(self.progress, 1)
        prow.addWidget(self.cancel_button)
        inner = QWidget(self)
        inner.setMinimumHeight(740)  # below that the page scrolls instead of squashing
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(top)
        lay.addLayout(prow)
        lay.addWidget(split, 1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)
        self._set_busy(None)
        last = ctx.settings.get("model/last")
        if last and Path(last).exists():
            self.set_model(last)
        else:  # a first start: offer the bundled example, ready to analyze
            self.set_model(str(jobs.example_dir() / "model.keras"))
        self._boards_loaded = False

    def _build_quantize(self) -> QGroupBox:
        box = QGroupBox("Quantize for the microcontroller", self)
        self.calib = QLineEdit(box)
        self.calib.setPlaceholderText("Calibration data (.npz with x, .npy, .csv, folder)")
        self.eval = QLineEdit(box)
        self.eval.setPlaceholderText("Evaluation data with labels (optional)")
        self.mode = QComboBox(box)
        self.mode.addItems(MODES)
        self.mode.setToolTip("int8: integer inputs and outputs, what TFLM runs best")
        self.mode.currentTextChanged.connect(lambda _: self._update_output())
        self.output = QLineEdit(box)
        self.output.setPlaceholderText("Quantized model (.tflite): a new file")
        self.output.setToolTip("Where the quantized model is written. An existing file is "
                               "only replaced after you agree; TinyOps's own files never.")
        self.output.textEdited.connect(lambda _: setattr(self, "_output_auto", False))
        save_as = QPushButton("Save as…", box)
        save_as.clicked.connect(self._pick_output)
        self.quantize_button = QPushButton("Quantize", box)
        self.quantize_button.setProperty("role", "primary")
        self.quantize_button.clicked.connect(self.quantize)
        self.export_format = QComboBox(box)
        self.export_format.addItem("C source", "c")
        self.export_format.addItem("Arduino library", "arduino")
        self.export_format.addItem("UF2 image", "uf2")
        self.export_button = QPushButton("Export…", box)
        self.export_button.clicked.connect(self._export_clicked)
        self.flash_button = QPushButton("Flash this model →", box)
        self.flash_button.clicked.connect(self._offer_for_flash)
        self.report_table = DictTable([("metric", "Metric"), ("float", "Float"),
                                       ("quantized", "Quantized")], box)
        self.class_table = DictTable([("label", "Class"), ("count", "Samples"),
                                      ("float", "Float accuracy"),
                                      ("quantized", "Quantized accuracy")], box)
        g = QGridLayout(box)
        g.addWidget(QLabel("Calibration", box), 0, 0)
        g.addWidget(self.calib, 0, 1)
        g.addWidget(self._browse_button(self.calib, "Calibration data"), 0, 2)
        g.addWidget(QLabel("Mode", box), 0, 3)
        g.addWidget(self.mode, 0, 4)
        g.addWidget(self.quantize_button, 0, 5)
        g.addWidget(QLabel("Evaluation", box), 1, 0)
        g.addWidget(self.eval, 1, 1)
        g.addWidget(self._browse_button(self.eval, "Evaluation data"), 1, 2)
        g.addWidget(self.export_format, 1, 3, 1, 2)
        g.addWidget(self.export_button, 1, 5)
        g.addWidget(QLabel("Save as", box), 2, 0)
        g.addWidget(self.output, 2, 1)
        g.addWidget(save_as, 2, 2)
        tables = QHBoxLayout()
        tables.addWidget(self.report_table, 1)
        tables.addWidget(self.class_table, 1)
        g.addLayout(tables, 3, 0, 1, 6)
        g.addWidget(self.flash_button, 2, 5)
        g.setColumnStretch(1, 1)
        return box

    def _browse_button(self, target: QLineEdit, title: str) -> QPushButton:
        b = QPushButton("Browse…", self)
        b.clicked.connect(lambda: self._pick_data(target, title))
        return b

    def _pick_data(self, target: QLineEdit, title: str) -> None:
        path, _ = QFileDialog.getOpenFileName(self, title, str(Path(self.path.text()).parent),
                                              jobs.DATA_FILTER)
        if path:
            target.setText(path)

    def _pick_output(self) -> None:
        start = self.output.text() or jobs.default_output(self.path.text(),
                                                          self.mode.currentText())
        path, _ = QFileDialog.getSaveFileName(
            self, "Save the quantized model as", start, "TFLite models (*.tflite)",
            options=QFileDialog.Option.DontConfirmOverwrite)  # asked when quantizing
        if path:
            self.output.setText(path)
            self._output_auto = False

    def _update_output(self) -> None:
        if self._output_auto and self.path.text().strip():
            self.output.setText(jobs.default_output(self.path.text().strip(),
                                                    self.mode.currentText()))

    # ------------------------------------------------------------------ boards
    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        if not self._boards_loaded:
            self.load_boards()

    def load_boards(self) -> Job:
        self._boards_loaded = True
        job = self.ctx.runner.submit(jobs.board_choices, name="board list", pass_context=False)
        job.succeeded.connect(self._boards)
        job.failed.connect(self.ctx.report_error)
        return job

    def _boards(self, choices: list[tuple[str, str]]) -> None:
        current = self.board.currentData()
        self.board.clear()
        self.board.addItem("(no board)", None)
        for bid, name in choices:
            self.board.addItem(name, bid)
        sel = self.ctx.selected_device()
        want = current or (getattr(sel, "board_id", None) if sel else None) or "virtual"
        idx = self.board.findData(want)
        self.board.setCurrentIndex(max(idx, 0))

    # ------------------------------------------------------------------ actions
    def browse(self) -> None:
        start = str(Path(self.path.text()).parent) if self.path.text() else str(jobs.example_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Open a model", start, jobs.MODEL_FILTER)
        if path:
            self.set_model(path)
            self.analyze()

    def use_example(self) -> None:
        self.set_model(str(jobs.example_dir() / "model.keras"))
        self.analyze()

    def set_model(self, path: str) -> None:
        self.path.setText(path)
        calib, ev = jobs.guess_data(path)
        if calib and not self.calib.text():
            self.calib.setText(calib)
        if ev and not self.eval.text():
            self.eval.setText(ev)

    def analyze(self) -> Job | None:
        path = self.path.text().strip()
        if not path:
            self.ctx.report_error(JobError("no model file chosen",
                                           "pick a .tflite, .keras or .h5 file (Ctrl+O)"))
            return None
        self.ctx.settings.set("model/last", path)
        if not self.calib.text():
            self.set_model(path)
        return self._analyze(path)

    def _analyze(self, path: str) -> Job:
        self.clear_analysis(f"analyzing {Path(path).name}…")
        job = self.ctx.runner.submit(self.worker.call, JOBS + "analyze_job", path,
                                     self.board.currentData(), name="analyze")
        job.succeeded.connect(self.show_analysis)
        job.failed.connect(lambda err: self.clear_analysis(
            "analysis cancelled" if err.cancelled else f"analysis failed: {err.message}"))
        return self._track(job, "analyzing…")

    def clear_analysis(self, why: str) -> None:
        """No stale verdict: results go the moment a new analysis starts or one fails."""
        self.analysis = None
        self.summary.set_rows([("File", Path(self.path.text()).name or "—"), ("Status", why)])
        self.fit.show_fit(None)
        self.fit.setTitle("Fit on board")
        self.fit.verdict.setText(why)
        for table in (self.ops, self.tensors, self.layers):
            table.set_rows([])

    def quantize(self) -> Job | None:
        path, output = self.path.text().strip(), self.output.text().strip()
        try:
            out = jobs.check_output(path, output, overwrite=True)
        except TinyOpsError as exc:
            self.ctx.report_error(JobError(exc.message, exc.hint))
            return None
        overwrite = False
        if out.exists():
            if self.ctx.kiosk or not self._confirm_replace(out):
                self.ctx.report_info(f"{out.name} kept (not replaced): choose another name "
                                     "with Save as… to quantize")  # a choice, not an error
                return None
            overwrite = True
        job = self.ctx.runner.submit(self.worker.call, JOBS + "quantize_job", path,
                                     self.calib.text().strip(), self.eval.text().strip(),
                                     self.mode.currentText(), output=str(out),
                                     overwrite=overwrite, name="quantize")
        job.succeeded.connect(self.show_report)
        return self._track(job, "quantizing…")

    def _confirm_replace(self, out: Path) -> bool:
        answer = QMessageBox.question(
            self, "Replace the file?", f"{out} exists already.\n\nReplace it with the "
            "quantized model?", QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def shutdown(self) -> None:
        self.worker.stop()

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _track(self, job: Job, text: str) -> Job:
        self._set_busy(job, text)
        job.progress.connect(self._progress)
        job.failed.connect(self.ctx.report_error)
        job.failed.connect(lambda err: self.progress_label.setText(
            "cancelled" if err.cancelled else f"failed: {err.message}"))
        job.finished.connect(lambda: self._set_busy(None))
        return job

    def _set_busy(self, job: Job | None, text: str = "") -> None:
        self._job = job
        busy = job is not None
        for w in (self.analyze_button, self.quantize_button, self.export_button):
            w.setEnabled(not busy)
        self.cancel_button.setVisible(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setValue(0)
            self.progress_label.setText(text)
        self.flash_button.setEnabled(not busy and bool(self.report and self.report.get("output")))

    def _progress(self, fraction: float, message: str) -> None:
        self.progress.setValue(int(fraction * 1000))
        if message:
            self.progress_label.setText(message)

    # ------------------------------------------------------------------ results
    def show_analysis(self, a: dict[str, Any]) -> None:
        self.analysis = a
        self.summary.set_rows(views.analysis_rows(a))
        self.summary.setToolTip(str(a.get("arena_note") or ""))
        self.fit.show_fit(a.get("fit"), self.board.currentText())
        self.fit.setTitle(f"{self.fit.title()} · {Path(str(a.get('model', ''))).name}")
        colors = {"yes": theme.GOOD, "no": theme.BAD}
        self.ops.set_rows(views.op_rows(a), {"tflm": lambda v: colors.get(str(v))})
        self.tensors.set_rows(views.tensor_rows(a))
        self.layers.set_rows(a.get("layers", []))
        self.progress_label.setText(f"analyzed in {a.get('seconds', 0):.1f} s")

    def show_report(self, r: dict[str, Any]) -> None:
        self.report = r
        self.report_table.set_rows(views.report_rows(r))
        self.class_table.set_rows(views.class_rows(r))
        out = r.get("output")
        self.ctx.report_info(f"quantized model written to {out}")
        self.flash_button.setEnabled(bool(out))
        if out:  # the gauge and the arena figure follow the model now on show; layer errors
            self.layers.compare(self.path.text().strip(), str(out), self.calib.text().strip())
            QTimer.singleShot(0, lambda: self._analyze(str(out)))

    def _offer_for_flash(self) -> None:
        if self.report and self.report.get("output"):
            self.artifact_ready.emit(str(self.report["output"]))

    def _export_clicked(self) -> None:
        src = (self.report or {}).get("output") or self.path.text().strip()
        fmt = self.export_format.currentData()
        folder = str(Path(src).parent) if src else ""
        if fmt == "uf2":
            out, _ = QFileDialog.getSaveFileName(self, "Export a UF2 image",
                                                 str(Path(src).with_suffix(".uf2")),
                                                 "UF2 images (*.uf2)")
        else:
            out = QFileDialog.getExistingDirectory(self, "Export into the folder", folder)
        if out:
            self.export(src, fmt, out)

    def export(self, src: str, fmt: str, out: str) -> Job:
        job = self.ctx.runner.submit(self.worker.call, JOBS + "export_job", src, fmt, out,
                                     self.board.currentData(), name="export")
        job.succeeded.connect(lambda p: self.ctx.report_info(f"exported {p}"))
        return self._track(job, f"exporting {fmt}…")
