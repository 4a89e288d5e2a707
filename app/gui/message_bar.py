"""A non-modal message over the pages: errors with their fix, warnings, notices.

It floats over the top of the page area (anchored to it, not in its layout), so showing or
hiding a message never moves the page: a click meant for a button lands on that button.
Never a dialog that waits for a click (kiosk mode depends on that): errors and warnings
stay until closed or replaced, info messages fade after a few seconds. Kinds: ``info``,
``ok``, ``warning``, ``error`` (questions are dialogs: ``MainWindow.ask``).
"""

from __future__ import annotations

import html

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QWidget

from app.gui import theme
from app.gui.workers import JobError

_COLORS = {"error": theme.BAD, "warning": theme.WARN, "info": theme.ACCENT, "ok": theme.GOOD}


class MessageBar(QFrame):
    MAX_WIDTH = 760

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("messageBar")
        self.anchor: QWidget | None = None  # the area it floats over (its parent)
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
            f"background: qlineargradient(x1:0, y1:0, x2:0, y2:1, stop:0 {tint}, "
            f"stop:1 {tint}), palette(window); border-radius: 4px; "
            f"border-top: 1px solid palette(mid); border-right: 1px solid palette(mid); "
            f"border-bottom: 1px solid palette(mid); }}")
        text = f"<b>{html.escape(message)}</b>"
        if hint:
            what = "Fix" if level in ("error", "warning") else "Note"
            text += f"<br><span>{what}: {html.escape(hint)}</span>"
        self.label.setText(text)
        self.place()
        self.show()
        self.raise_()
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

    # ------------------------------------------------------------------ placement
    def float_over(self, area: QWidget) -> None:
        """Float over the top right of ``area`` (a child of it, outside its layout)."""
        self.setParent(area)
        self.anchor = area
        area.installEventFilter(self)
        self.place()

    def place(self) -> None:
        area = self.anchor
        if area is None:
            return
        width = min(self.MAX_WIDTH, max(200, area.width() - 16))
        self.setFixedWidth(width)
        height = self.heightForWidth(width) if self.hasHeightForWidth() else 0
        self.adjustSize()
        self.setFixedWidth(width)
        height = max(height, self.sizeHint().height())
        self.setGeometry(area.width() - width - 8, 30, width, height)

    def eventFilter(self, obj: object, event: QEvent) -> bool:
        if obj is self.anchor and event.type() == QEvent.Type.Resize:
            self.place()
        return False
