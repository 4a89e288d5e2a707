"""The Console page: the board's raw text lines (bounded), with timestamps, send and save.

Lines are kept in a bounded buffer (:data:`MAX_LINES`, plain strings); the text widget is
filled only while the page is visible. A QPlainTextEdit fed 20 lines a second while
hidden grew the window's memory by ~90 MB in 13 minutes (its layout of every block), and
a kiosk never shows this page at all.
"""

from __future__ import annotations

import time
from collections import deque
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QFontDatabase, QTextCursor
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.gui.workers import JobError

MAX_LINES = 5000


class ConsolePage(QWidget):
    send_requested = Signal(str)
    error = Signal(object)
    info = Signal(str)

    def __init__(self, parent: QWidget | None = None, timestamps: bool = True) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setPlaceholderText("Text the board prints appears here.")
        self.timestamps = QCheckBox("Timestamps", self)
        self.timestamps.setChecked(timestamps)
        self.follow = QCheckBox("Follow", self)
        self.follow.setChecked(True)
        self.follow.setToolTip("Keep the newest line in view")
        self.input = QLineEdit(self)
        self.input.setPlaceholderText("Text to send to the board (Enter)")
        self.input.returnPressed.connect(self._send)
        self.send_button = QPushButton("Send", self)
        self.send_button.clicked.connect(self._send)
        self.save_button = QPushButton("Save…", self)
        self.save_button.clicked.connect(self._save_clicked)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.clicked.connect(self.text.clear)
        top = QHBoxLayout()
        top.addWidget(self.timestamps)
        top.addWidget(self.follow)
        top.addStretch(1)
        top.addWidget(self.save_button)
        top.addWidget(self.clear_button)
        bottom = QHBoxLayout()
        bottom.addWidget(self.input, 1)
        bottom.addWidget(self.send_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(top)
        lay.addWidget(self.text, 1)
        lay.addLayout(bottom)
        self.lines_total = 0
        self.lines: deque[tuple[float, str]] = deque(maxlen=MAX_LINES)
        self.timestamps.toggled.connect(lambda _on: self._refill())
        self.clear_button.clicked.connect(self.lines.clear)

    def _format(self, lines: Any) -> str:
        if self.timestamps.isChecked():
            return "\n".join(
                f"{time.strftime('%H:%M:%S', time.localtime(t))}.{int(t * 1000) % 1000:03d}  {s}"
                if t else s for t, s in lines)
        return "\n".join(s for _, s in lines)

    def _refill(self) -> None:
        self.text.setPlainText(self._format(self.lines))
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._refill()  # what came while it was hidden

    def hideEvent(self, event: Any) -> None:
        super().hideEvent(event)
        self.text.clear()  # the buffer keeps the lines; the widget's layout goes

    def append_lines(self, lines: list[tuple[float, str]]) -> None:
        """Add a batch of (host time, line) once per timer tick, not per line."""
        if not lines:
            return
        self.lines_total += len(lines)
        self.lines.extend(lines[-MAX_LINES:])
        if not self.isVisible():
            return
        text = self._format(lines[-MAX_LINES:])
        bar = self.text.verticalScrollBar()
        keep = None if self.follow.isChecked() else bar.value()
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.text.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(text)
        if keep is None:
            bar.setValue(bar.maximum())
        else:
            bar.setValue(keep)

    def _send(self) -> None:
        text = self.input.text()
        if text:
            self.send_requested.emit(text)
            self.input.clear()

    def _save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the console", "console.txt",
                                              "Text files (*.txt);;All files (*)")
        if path:
            self.save(path)

    def save(self, path: str) -> bool:
        try:
            Path(path).write_text(self._format(self.lines) + "\n", encoding="utf-8")
        except OSError as exc:
            self.error.emit(JobError(f"could not write {path}: {exc.strerror or exc}",
                                     "pick a folder you can write to"))
            return False
        self.info.emit(f"saved {path}")
        return True
