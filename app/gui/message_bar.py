"""A non-modal message strip above the pages: errors with their fix, notices, demo banner.

Never a dialog that waits for a click (kiosk mode depends on that): messages stay until
closed or replaced, info messages fade after a few seconds.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app.gui import theme
from app.gui.workers import JobError

_COLORS = {"error": theme.BAD, "warning": theme.WARN, "info": theme.ACCENT, "ok": theme.GOOD}


class MessageBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(12, 6, 6, 6)
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.label, 1)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.clicked.connect(self.dismiss)
        lay.addWidget(self.close_button)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.dismiss)
        self.level = ""
        self.message = ""
        self.history: list[tuple[str, str]] = []
        self.hide()

    def show_message(self, level: str, message: str, hint: str | None = None,
                     timeout_ms: int = 0) -> None:
        self.level, self.message = level, message
        self.history.append((level, message if not hint else f"{message} — fix: {hint}"))
        del self.history[:-100]
        color = QColor(_COLORS.get(level, theme.ACCENT))
        tint = f"rgba({color.red()}, {color.green()}, {color.blue()}, 40)"
        self.setStyleSheet(
            f"QFrame#messageBar {{ border-left: 4px solid {color.name()}; "
            f"background: {tint}; border-radius: 3px; }}")
        text = f"<b>{html.escape(message)}</b>"
        if hint:
            text += f"<br><span>Fix: {html.escape(hint)}</span>"
        self.label.setText(text)
        self.show()
        if timeout_ms:
            self._timer.start(timeout_ms)
        else:
            self._timer.stop()

    def show_error(self, err: JobError) -> None:
        if err.cancelled:
            self.show_message("info", err.message, None, 4000)
        else:
            self.show_message("error", err.message, err.hint)
            if err.detail and not err.expected:
                self.label.setToolTip(err.detail[-3000:])

    def info(self, message: str, timeout_ms: int = 5000) -> None:
        self.show_message("info", message, None, timeout_ms)

    def dismiss(self) -> None:
        self._timer.stop()
        self.level = self.message = ""
        self.label.setToolTip("")
        self.hide()
