"""The Flash page (placeholder until provisioning lands)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.gui.context import AppContext


class FlashPage(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Flashing is not available in this build yet.", self))

    def device_connected(self, info: Any) -> None:
        pass
