"""The status bar: connection state, data rate, and the running job with a Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QLabel,
    QProgressBar,
    QSizePolicy,
    QStatusBar,
    QToolButton,
    QWidget,
)

from app.gui import theme
from app.gui.plain import plain
from app.gui.workers import Job, JobRunner

_STATE_COLORS = {"connected": theme.GOOD, "connecting": theme.WARN, "released": theme.WARN,
                 "lost": theme.BAD, "failed": theme.BAD}


class StatusBar(QStatusBar):
    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.link_label = QLabel(self)
        self.rate_label = QLabel(self)
        self.rate_label.setProperty("role", "muted")
        self.job_label = QLabel(self)
        self.job_bar = QProgressBar(self)
        self.job_bar.setRange(0, 1000)
        self.job_bar.setMaximumWidth(180)
        self.job_bar.setTextVisible(False)
        self.cancel_button = QToolButton(self)
        self.cancel_button.setText("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        self.job_label.setMaximumWidth(260)  # a long progress message is cut, not widening
        for label in (self.link_label,):
            # long texts are cut, never widen the window past a small screen
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            label.setMinimumWidth(80)
        self.addWidget(self.link_label, 1)
        self.addPermanentWidget(self.job_label)
        self.addPermanentWidget(self.job_bar)
        self.addPermanentWidget(self.cancel_button)
        self.addPermanentWidget(self.rate_label)
        self._job: Job | None = None
        self._runner = runner
        runner.job_started.connect(self._job_started)
        runner.job_finished.connect(self._job_finished)
        self._show_job(None)
        self.set_link("idle", "no board connected")

    def set_link(self, state: str, detail: str) -> None:
        detail = plain(detail)
        color = _STATE_COLORS.get(state, "#8C959F")
        self.link_label.setText(f"<span style='color:{color}'>●</span> {detail}")
        self.link_label.setToolTip(detail)
        self.link_state = state

    def set_rate(self, text: str) -> None:
        self.rate_label.setText(text)

    def _job_started(self, job: Job) -> None:
        if job.name in ("send",):
            return
        self._show_job(job)
        job.progress.connect(lambda f, m, j=job: self._progress(j, f, m))

    def _job_finished(self, job: Job) -> None:
        if job is self._job:
            active = [j for j in self._runner.active if j.name != "send"]
            self._show_job(active[-1] if active else None)

    def _show_job(self, job: Job | None) -> None:
        self._job = job
        for w in (self.job_label, self.job_bar, self.cancel_button):
            w.setVisible(job is not None)
        if job is not None:
            fraction, message = job.last_progress
            self._progress(job, fraction, message)

    def _progress(self, job: Job, fraction: float, message: str) -> None:
        if job is not self._job:
            return
        self.job_label.setText(f"{job.name}: {message}" if message else job.name)
        self.job_bar.setValue(int(max(0.0, min(1.0, fraction)) * 1000))

    def _cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()
