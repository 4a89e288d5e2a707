"""What the dashboard shows while its board is away: everything greyed, and why, in words."""

from __future__ import annotations

import time
from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, QRect, Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


def plain_reason(reason: str) -> str:
    """A disconnect reason a visitor can read (no errno, no exception names)."""
    low = reason.lower()
    if "offline" in low:
        return "The device is offline (its fleet status says so)."
    if "sent nothing" in low:
        return "The device has sent nothing since it was chosen."
    if any(k in low for k in ("errno", "no such", "not found", "could not open", "unplug",
                              "disconnect", "eof", "closed", "i/o error", "input/output")):
        return "The board was disconnected (unplugged, reset or powered off)."
    if "timeout" in low or "timed out" in low or "silent" in low or "answer" in low:
        return "The board stopped answering."
    if "busy" in low or "permission" in low:
        return "The board's port cannot be opened right now."
    return "The connection to the board was lost."


class OutageOverlay(QWidget):
    """A translucent grey sheet over the plots with a centred message box.

    ``cover`` gives the area to cover (in the parent's coordinates); the sheet follows the
    parent's resizes by itself. Hidden when live.
    """

    def __init__(self, parent: QWidget, cover: Callable[[], QRect]) -> None:
        super().__init__(parent)
        self._cover = cover
        parent.installEventFilter(self)
        self.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setObjectName("outage")
        self.setStyleSheet(
            "#outage { background: rgba(110, 110, 110, 150); }"
            "#outageBox { background: palette(window); border: 2px solid #c0392b;"
            " border-radius: 10px; padding: 18px 26px; }")
        lay = QVBoxLayout(self)
        lay.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.box = QLabel(self)
        self.box.setObjectName("outageBox")
        self.box.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.box.setWordWrap(True)
        self.box.setMaximumWidth(520)
        f = self.box.font()
        f.setPointSizeF(f.pointSizeF() * 1.2)
        self.box.setFont(f)
        lay.addWidget(self.box)
        self.since: float | None = None
        self.reason = ""
        self.hide()

    def show_outage(self, reason: str, reconnecting: bool) -> None:
        if self.since is None:
            self.since = time.time()
        self.reason = reason
        stamp = time.strftime("%H:%M:%S", time.localtime(self.since))
        what = plain_reason(reason)
        then = ("Reconnecting: the view resumes by itself when it is back."
                if reconnecting else "Connect a board to resume.")
        self.box.setText(f"<b>No live data since {stamp}</b><br>{what}<br>{then}<br>"
                         "<span style='color:gray'>Values shown are the last received.</span>")
        self.setGeometry(self._cover())
        self.show()
        self.raise_()

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self.setGeometry(self._cover())
        return False

    def clear(self) -> None:
        self.since = None
        self.hide()

    @property
    def text(self) -> str:
        return self.box.text()
