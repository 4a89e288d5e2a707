"""The Flash page: an artifact, one or more target boards, progress per board, the device's
own verification, validation on target, and the latest provisioning records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.gui.context import AppContext
from app.gui.pages import flash_jobs
from app.gui.pages.flash_summary import FlashSummary, validation_text
from app.gui.pages.flash_targets import TargetList
from app.gui.pages.model_jobs import example_dir
from app.gui.widgets import DictTable, human_bytes
from app.gui.workers import Job, JobError
from app.state.flash_handover import FlashHandover

COLS = ("Board", "Port", "USB serial", "Progress", "Status", "Verification")
DESCRIBE_DELAY_MS = 250  # typing in the artifact field: hash once it pauses


class FlashPage(QWidget):
    flashed = Signal(str, dict)  # port, result dict

    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.jobs: dict[str, Job] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self.summary = FlashSummary()  # the verdict: this batch, one line per board
        self.validation: dict[str, Any] | None = None
        self.described: dict[str, Any] = {}  # describe_file() of the artifact field's file
        self._describe_timer = QTimer(self)
        self._describe_timer.setSingleShot(True)
        self._describe_timer.setInterval(DESCRIBE_DELAY_MS)
        self._describe_timer.timeout.connect(self._describe_now)

        self.artifact = QLineEdit(self)
        self.artifact.setPlaceholderText("Model (.tflite) or firmware image to flash")
        self.artifact.textChanged.connect(self._artifact_edited)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        example = QPushButton("Example", self)
        example.setToolTip("The bundled int8 vibration model")
        example.clicked.connect(self.use_example)
        self.about = QLabel(self)
        self.about.setProperty("role", "muted")
        self.dest = QLineEdit(self)
        self.dest.setPlaceholderText("Destination on the device (default: from the board)")
        self.targets = TargetList(self)
        self.targets.setMaximumHeight(96)
        self.targets.setMinimumHeight(48)
        self.targets_note = QLabel(self)
        self.targets_note.setProperty("role", "muted")
        self.targets.changed.connect(lambda: self.targets_note.setText(self.targets.summary()))
        self.flash_button = QPushButton("Flash and verify", self)
        self.flash_button.setProperty("role", "primary")
        self.flash_button.setToolTip("Flash the ticked boards (only connected ones)")
        self.flash_button.clicked.connect(self.flash_selected)
        self.flash_all_button = QPushButton("Flash all connected", self)
        self.flash_all_button.setToolTip("Station mode: tick every connected board and flash "
                                         "them in parallel")
        self.flash_all_button.clicked.connect(self.flash_all)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.setEnabled(False)

        top = QGroupBox("What and where", self)
        g = QGridLayout(top)
        g.addWidget(QLabel("Artifact", top), 0, 0)
        g.addWidget(self.artifact, 0, 1)
        g.addWidget(browse, 0, 2)
        g.addWidget(example, 0, 3)
        g.addWidget(self.about, 1, 1, 1, 3)
        g.addWidget(QLabel("Destination", top), 2, 0)
        g.addWidget(self.dest, 2, 1, 1, 3)
        g.addWidget(QLabel("Targets", top), 3, 0, Qt.AlignmentFlag.AlignTop)
        g.addWidget(self.targets, 3, 1, 1, 3)
        buttons = QHBoxLayout()
        buttons.addWidget(self.targets_note, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.flash_all_button)
        buttons.addWidget(self.flash_button)
        g.addLayout(buttons, 4, 1, 1, 3)
        g.setColumnStretch(1, 1)

        self.table = QTableWidget(0, len(COLS), self)
        self.table.setHorizontalHeaderLabels(COLS)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.verdict = QLabel(self)
        f = self.verdict.font()
        f.setPointSizeF(f.pointSizeF() * 1.3)
        f.setBold(True)
        self.verdict.setFont(f)
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.val_data = QLineEdit(self)
        self.val_data.setPlaceholderText("Validation data (.npz with x, y)")
        self.validate_button = QPushButton("Validate on target", self)
        self.validate_button.setToolTip("Run samples on the board and compare its outputs "
                                        "bit for bit with the host's TFLM run")
        self.validate_button.clicked.connect(self.validate_connected)
        self.val_result = QLabel(self)
        self.val_result.setWordWrap(True)
        vrow = QHBoxLayout()
        vrow.addWidget(self.val_data, 1)
        vrow.addWidget(self.validate_button)
        self.records = DictTable([("time", "Time"), ("operation", "Operation"),
                                  ("result", "Result"), ("port", "Port"),
                                  ("artifact", "Artifact"), ("verify", "Verification")], self)
        self.records.setMaximumHeight(170)

        inner = QWidget(self)
        inner.setMinimumHeight(520)  # below that the page scrolls instead of squashing
        lay = QVBoxLayout(inner)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addWidget(top)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.verdict)
        lay.addLayout(vrow)
        lay.addWidget(self.val_result)
        recent = QLabel("Recent records", self)
        recent.setProperty("role", "muted")
        lay.addWidget(recent)
        lay.addWidget(self.records)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(inner)
        QVBoxLayout(self).addWidget(scroll)
        self.layout().setContentsMargins(0, 0, 0, 0)
        self._refresh_targets()

    # ------------------------------------------------------------------ inputs
    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Artifact to flash", str(example_dir()),
            "Models and images (*.tflite *.bin *.uf2 *.hex);;All files (*)")
        if path:
            self.set_artifact(path)

    def use_example(self) -> None:
        self.set_artifact(str(example_dir() / "model_int8.tflite"))

    def set_artifact(self, path: str) -> None:
        self.artifact.setText(path)
        ev = Path(path).with_name("eval.npz")
        if ev.is_file() and not self.val_data.text():
            self.val_data.setText(str(ev))

    def _artifact_edited(self, path: str) -> None:
        """Debounced: the file is read and hashed on a worker once typing pauses."""
        self.described = {}
        self.about.setText("" if not path.strip() else "…")
        self._describe_timer.start()

    def _describe_now(self) -> Job | None:
        path = self.artifact.text().strip()
        if not path:
            self.about.setText("")
            return None
        job = self.ctx.runner.submit(flash_jobs.describe_file, path, name="read artifact",
                                     pass_context=False)
        job.succeeded.connect(self._described)
        return job

    def _described(self, d: dict[str, Any]) -> None:
        if d.get("path") != self.artifact.text().strip():
            return  # the field changed meanwhile: a newer job is on its way
        self.described = d
        if not d.get("found"):
            self.about.setText("file not found")
            return
        kind = "TFLite model" if d.get("tflite") else str(d.get("kind") or "binary")
        self.about.setText(f"{kind} · {human_bytes(d.get('size'))} · sha256 "
                           f"{str(d.get('sha256'))[:16]}…")

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._refresh_targets()
        self.refresh_records()
        if not self.artifact.text():
            self.use_example()

    def _refresh_targets(self) -> None:
        self.targets.sync(self.ctx.devices(), self.ctx.link.port)

    def devices_changed(self, *_: Any) -> None:
        """A board came, went or connected (cheap: runs even while the page is hidden)."""
        self._refresh_targets()

    device_connected = devices_changed

    def selected_targets(self) -> list[Any]:
        return self.targets.chosen()

    # ------------------------------------------------------------------ flash
    def flash_selected(self) -> list[Job]:
        self._refresh_targets()
        targets = self.selected_targets()
        if not targets:
            self.ctx.report_error(JobError("no target board selected",
                                           "tick one or more boards in the list"))
            return []
        return [self.flash_to(entry) for entry in targets]

    def flash_all(self) -> list[Job]:
        """Station mode: every connected board, ticked and flashed in parallel."""
        self._refresh_targets()
        self.targets.tick_all()
        return self.flash_selected()

    def flash_to(self, entry: Any) -> Job:
        """Flash the artifact to one board (several run in parallel, one row each)."""
        path = self.artifact.text().strip()
        self.summary.begin(entry.port, running=bool(self.jobs))
        self._show_summary()
        row = self._row(entry)
        backend = "virtual" if entry.virtual else entry.backend
        # who owns the port meanwhile (share the session, release it, refuse): app.state
        handover = FlashHandover(self.ctx.link, entry.port,
                                 lambda: self._shares_session(path, backend))
        if handover.refused:  # releasing the port would kill the job using it
            job = self.ctx.runner.submit(
                flash_jobs.refuse, handover.decision.reason, handover.decision.hint,
                name=f"flash {entry.port}", pass_context=False)
            return self._track(entry, row, job)
        job = self.ctx.runner.submit(flash_jobs.flash_job, path, entry.port, backend=backend,
                                     board=entry.board_id, dest=self.dest.text().strip(),
                                     usb_serial=entry.serial, session=handover.session,
                                     wait_port=handover.wait_port,
                                     record=not self._is_demo(entry),
                                     name=f"flash {entry.port}")
        handover.started(job)  # no disconnect or board switch under the flash
        # a released port goes back to the live view (a lambda: it keeps the handover alive)
        job.finished.connect(lambda h=handover: h.finished())
        return self._track(entry, row, job)

    def _is_demo(self, entry: Any) -> bool:  # no provisioned device: no records for it
        return bool(entry.virtual and entry.port == self.ctx.demo_port())

    def _shares_session(self, path: str, backend: str | None) -> bool:
        d = self.described
        if d.get("path") == path and d.get("found"):  # known already: no file read here
            return backend in flash_jobs.SHARED_BACKENDS and d.get("kind") in \
                flash_jobs.SHARED_KINDS
        return flash_jobs.shares_session(path, backend)  # reads 512 bytes at most

    def _track(self, entry: Any, row: int, job: Job) -> Job:
        self.jobs[entry.port] = job
        bar: QProgressBar = self.table.cellWidget(row, 3)  # type: ignore[assignment]
        job.progress.connect(lambda f, m: (bar.setValue(int(f * 1000)),
                                           self._cell(row, 4, m)))
        job.succeeded.connect(lambda r, e=entry, rw=row: self._flashed(e, rw, r))
        job.failed.connect(lambda err, rw=row, p=entry.port: self._failed(rw, err, p))
        job.finished.connect(lambda p=entry.port: self._job_done(p))
        self.cancel_button.setEnabled(True)
        return job

    def _row(self, entry: Any) -> int:
        for r in range(self.table.rowCount()):
            if self.table.item(r, 1) and self.table.item(r, 1).text() == entry.port:
                break
        else:
            r = self.table.rowCount()
            self.table.insertRow(r)
            bar = QProgressBar(self.table)
            bar.setRange(0, 1000)
            self.table.setCellWidget(r, 3, bar)
        self._cell(r, 0, entry.title)
        self._cell(r, 1, entry.port)
        self._cell(r, 2, entry.serial or "—")
        self._cell(r, 4, "starting…")
        self._cell(r, 5, "")
        self.table.cellWidget(r, 3).setValue(0)
        return r

    def _cell(self, row: int, col: int, text: str, color: str | None = None) -> None:
        item = QTableWidgetItem(text)
        item.setToolTip(text)
        if color:
            item.setForeground(QColor(color))
        self.table.setItem(row, col, item)

    def _flashed(self, entry: Any, row: int, result: dict[str, Any]) -> None:
        self.results[entry.port] = result
        if result.get("ok") and result.get("verified"):
            algo = result.get("digest_algo", "sha256")
            dev = str(result.get("device_digest") or "")
            text = f"{algo} match · device {dev[:16]}…"
            self._cell(row, 4, f"done in {result.get('duration_s', 0):.1f} s", theme.GOOD)
            self._cell(row, 5, text, theme.GOOD)
            self.table.cellWidget(row, 3).setValue(1000)
            self.summary.done(entry.port, True,
                              f"✓ Verified on {entry.port}: the device reports {algo} "
                              f"{dev[:16]}…, equal to the file's "
                              f"({human_bytes(result.get('bytes'))}, "
                              f"{result.get('throughput_Bps', 0) / 1024:.1f} kB/s)"
                              + (" · demo board: no provisioning record"
                                 if self._is_demo(entry) else ""))
        else:
            err = str(result.get("error") or "not verified")
            still = result.get("still_runs")
            runs = (f"The board still runs its previous model (sha256 {still[:16]}…)."
                    if still else "What the board runs now is unknown: check it on the "
                    "Live page or with `tinyops info`.")
            self._cell(row, 4, "failed", theme.BAD)
            self._cell(row, 5, err, theme.BAD)
            self.summary.done(entry.port, False, f"✗ {entry.port}: {err} {runs}")
            self.ctx.report_error(JobError(f"{err}. {runs}", result.get("hint")))
        self._show_summary()
        self.flashed.emit(entry.port, result)

    def _failed(self, row: int, err: JobError, port: str = "") -> None:
        what = "cancelled" if err.cancelled else "failed"
        self._cell(row, 4, what, theme.BAD)
        self._cell(row, 5, err.message, theme.BAD)
        self.summary.done(port, False, f"✗ {port}: {what}: {err.message}")
        self._show_summary()
        self.ctx.report_error(err)

    def _show_summary(self) -> None:
        color = {"ok": theme.GOOD, "failed": theme.BAD}.get(self.summary.state)
        self.verdict.setStyleSheet(f"color: {color};" if color else "")
        self.verdict.setText(self.summary.text())

    def _job_done(self, port: str) -> None:
        self.jobs.pop(port, None)
        self.cancel_button.setEnabled(bool(self.jobs))
        self.refresh_records()

    def cancel(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel()

    # ------------------------------------------------------------------ validate
    def validate_connected(self) -> Job | None:
        port = self.ctx.link.port
        if not port or self.ctx.link.session is None:
            self.ctx.report_error(JobError("no board is connected",
                                           "connect the board to validate (Device menu)"))
            return None
        entry = next((e for e in self.ctx.devices() if e.port == port), None)
        job = self.ctx.runner.submit(flash_jobs.validate_job, self.artifact.text().strip(),
                                     self.val_data.text().strip(), port,
                                     session=self.ctx.link.session,
                                     usb_serial=getattr(entry, "serial", None),
                                     record=not (entry is not None and self._is_demo(entry)),
                                     name=f"validate {port}")
        self.ctx.link.lend(job)
        self.val_result.setText("validating…")
        job.progress.connect(lambda f, m: self.val_result.setText(f"validating: {m}"))
        job.succeeded.connect(self._validated)
        job.failed.connect(lambda err: (self.val_result.setText(f"validation failed: "
                                                                f"{err.message}"),
                                        self.ctx.report_error(err)))
        job.finished.connect(self.refresh_records)
        return job

    def _validated(self, r: dict[str, Any]) -> None:
        self.validation = r
        ok, text = validation_text(r)
        self.val_result.setStyleSheet(f"color: {theme.GOOD if ok else theme.BAD};")
        self.val_result.setText(text)

    # ------------------------------------------------------------------ records
    def refresh_records(self) -> None:
        from app.gui.pages.records_page import load_records

        job = self.ctx.runner.submit(load_records, 10, name="records", pass_context=False)
        job.succeeded.connect(lambda rows: self.records.set_rows(
            [{**r, "time": str(r.get("time", "")).replace("T", " ")[:19]} for r in rows],
            {"result": lambda v: {"ok": theme.GOOD, "failed": theme.BAD}.get(v)}))
