"""Starting a rollout from the Fleet page: the dialog (model file, steps, health window, rules;
fleet and broker: the page's) and the ``tinyops rollout …`` child processes every action runs
(``cli``; ``child_outcome`` reads what a child said with ``--json``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.state import rollout_view as rv

DEFAULT_RULES = "drift>0.2,drifting>10%,latency_p95>+20%,failed>2%,silent>0"


def cli(*args: str) -> list[str]:
    """The ``tinyops`` command line with this interpreter (works from a checkout too)."""
    return [sys.executable, "-m", "app.cli", "rollout", *args]


def child_outcome(output: str, rc: int) -> dict[str, Any]:
    """What a ``tinyops rollout … --json`` child said: its last JSON object (``error`` and
    ``hint`` when it failed), or its last line as the error when it printed no JSON."""
    import json

    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            try:
                said = json.loads(line)
            except ValueError:
                continue
            if isinstance(said, dict):
                return said
    lines = [ln for ln in output.splitlines() if ln.strip()]
    if rc == 0:
        return {}
    return {"error": lines[-1] if lines else f"exit status {rc}"}


class StartDialog(QDialog):
    """A new rollout: model file, steps, health window, rules (fleet and broker: the page's)."""

    def __init__(self, fleet: str, mqtt: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New rollout")
        self.fleet, self.mqtt = fleet, mqtt
        self.model = QLineEdit(self)
        self.model.setPlaceholderText("a .tflite model (its card beside it, if any)")
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.model, 1)
        row.addWidget(browse)
        self.steps = QLineEdit("5,25,50,100", self)
        self.steps.setToolTip("percent of the fleet after each step")
        self.window_s = QDoubleSpinBox(self)
        self.window_s.setRange(1, 86400)
        self.window_s.setValue(60)
        self.window_s.setSuffix(" s")
        self.rules = QLineEdit(DEFAULT_RULES, self)
        self.rules.setToolTip("halt rules, comma-separated: drift>0.2, drifting>10%, "
                              "confidence<-10%, latency_p95>+20%, errors>0, resets>0, "
                              "failed>2%, silent>0")
        self.devices = QLineEdit(self)
        self.devices.setPlaceholderText("blank: every device of the fleet; or id,id,…")
        self.error = QLabel("", self)
        self.error.setStyleSheet("color: #c62828")
        form = QFormLayout()
        form.addRow("Model", row)
        form.addRow("Fleet", QLabel(f"{fleet} on {mqtt}", self))
        form.addRow("Steps (%)", self.steps)
        form.addRow("Health window", self.window_s)
        form.addRow("Halt on", self.rules)
        form.addRow("Devices", self.devices)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel, self)
        buttons.accepted.connect(self._ok)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.error)
        lay.addWidget(buttons)

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Model", "",
                                              "TFLite models (*.tflite);;All files (*)")
        if path:
            self.model.setText(path)

    def command(self) -> list[str]:
        """The ``tinyops rollout create …`` arguments; ValueError says what is wrong."""
        model = self.model.text().strip()
        if not model or not Path(model).is_file():
            raise ValueError(f"model file {model or '(none)'} not found: choose a .tflite file")
        steps = rv.parse_steps(self.steps.text())
        args = ["create", model, "--fleet", self.fleet, "--mqtt", self.mqtt,
                "--steps", ",".join(map(str, steps)),
                "--health-window", f"{self.window_s.value():g}"]
        if self.rules.text().strip():
            args += ["--halt-on", self.rules.text().strip()]
        devices = [d for d in self.devices.text().replace(" ", "").split(",") if d]
        if devices:
            args += ["--devices", ",".join(devices)]
        return args

    def _ok(self) -> None:
        try:
            self.command()
        except ValueError as exc:
            self.error.setText(str(exc))
            return
        self.accept()
