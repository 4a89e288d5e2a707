"""Small reusable widgets: the flash/RAM fit gauge, key-value panels, dict tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)

from app.gui import theme

STATUS_COLORS = {"fits": theme.GOOD, "tight": theme.WARN, "does not fit": theme.BAD}


def human_bytes(n: float | None) -> str:
    if n is None:
        return "—"
    n = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_count(n: float | None) -> str:
    if n is None:
        return "—"
    n = float(n)
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f}"


class UsageBar(QWidget):
    """One bar: runtime reserve (grey), the model's need (status colour), free space."""

    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.total = 0
        self.reserve = 0
        self.needed = 0
        self.status = ""
        self.setMinimumHeight(44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(320, 46)

    def set_values(self, total: int, reserve: int, needed: int, status: str) -> None:
        self.total, self.reserve, self.needed, self.status = total, reserve, needed, status
        self.setToolTip(f"{self.title}: model needs {human_bytes(needed)}; the runtime keeps "
                        f"{human_bytes(reserve)} of {human_bytes(total)}")
        self.update()

    def paintEvent(self, event: Any) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        fm = p.fontMetrics()
        text = pal.color(QPalette.ColorRole.WindowText)
        p.setPen(text)
        label = self.title
        if self.total:
            label += (f":  model {human_bytes(self.needed)}  +  runtime {human_bytes(self.reserve)}"
                      f"  of  {human_bytes(self.total)}")
        p.drawText(0, fm.ascent(), label)
        bar = QRectF(0, fm.height() + 4, self.width() - 1, 16)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(pal.color(QPalette.ColorRole.Mid))
        p.drawRoundedRect(bar, 4, 4)
        if self.total > 0:
            w = bar.width()
            r = min(1.0, self.reserve / self.total) * w
            n = min(1.0, self.needed / self.total) * w
            p.setBrush(QColor("#9AA3AD"))
            p.drawRoundedRect(QRectF(bar.left(), bar.top(), r, bar.height()), 4, 4)
            p.setBrush(QColor(STATUS_COLORS.get(self.status, theme.ACCENT)))
            p.drawRect(QRectF(bar.left() + r, bar.top(), min(n, w - r), bar.height()))
            if self.reserve + self.needed > self.total:  # overflow: red end cap
                p.setBrush(QColor(theme.BAD))
                p.drawRoundedRect(QRectF(bar.right() - 6, bar.top() - 2, 6, bar.height() + 4),
                                  2, 2)
        p.end()


class FitGauge(QGroupBox):
    """Verdict and flash/RAM bars for a model on a board."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Fit on board", parent)
        lay = QFormLayout(self)
        self.verdict = QLabel(self)
        self.verdict.setWordWrap(True)
        f = self.verdict.font()
        f.setPointSizeF(f.pointSizeF() * 1.5)
        f.setBold(True)
        self.verdict.setFont(f)
        self.reason = QLabel(self)
        self.reason.setWordWrap(True)
        self.reason.setProperty("role", "muted")
        self.flash = UsageBar("Flash", self)
        self.ram = UsageBar("RAM", self)
        lay.addRow(self.verdict)
        lay.addRow(self.reason)
        lay.addRow(self.flash)
        lay.addRow(self.ram)

    def show_fit(self, fit: dict[str, Any] | None, board_name: str = "") -> None:
        if not fit:
            self.verdict.setText("Analyze a model to see whether it fits the board.")
            self.verdict.setStyleSheet("")
            self.reason.setText("")
            self.flash.set_values(0, 0, 0, "")
            self.ram.set_values(0, 0, 0, "")
            return
        verdict = str(fit.get("verdict", ""))
        self.setTitle(f"Fit on {fit.get('board_name') or board_name or fit.get('board')}")
        self.verdict.setText(verdict.capitalize())
        self.verdict.setStyleSheet(f"color: {STATUS_COLORS.get(verdict, theme.ACCENT)};")
        self.reason.setText(str(fit.get("reason", "")))
        for bar, key in ((self.flash, "flash"), (self.ram, "ram")):
            d = fit.get(key) or {}
            bar.set_values(int(d.get("total") or 0), int(d.get("runtime_reserve") or 0),
                           int(d.get("needed") or 0), str(d.get("status", "")))


class KeyValues(QGroupBox):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.form = QFormLayout(self)
        self.form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self._labels: dict[str, QLabel] = {}

    def set_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self._labels.clear()
        for key, value in rows:
            label = QLabel(value, self)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self._labels[key] = label
            self.form.addRow(f"{key}:", label)

    def value(self, key: str) -> str:
        return self._labels[key].text()


def row_table(columns: Sequence[str], parent: QWidget | None = None) -> QTableWidget:
    """A read-only table whose rows are picked one at a time (columns share the width)."""
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
    table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    table.verticalHeader().setVisible(False)
    table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    return table


class DictTable(QTableWidget):
    """A read-only table from a list of dicts and column (key, title) pairs."""

    def __init__(self, columns: Sequence[tuple[str, str]], parent: QWidget | None = None) -> None:
        super().__init__(0, len(columns), parent)
        self.columns = list(columns)
        self.setHorizontalHeaderLabels([t for _, t in columns])
        self.verticalHeader().hide()
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.horizontalHeader().setStretchLastSection(True)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def set_rows(self, rows: Sequence[dict[str, Any]], colors: dict[str, Any] | None = None
                 ) -> None:
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, (key, _) in enumerate(self.columns):
                value = row.get(key)
                item = QTableWidgetItem("" if value is None else str(value))
                if colors and key in colors:
                    color = colors[key](value)
                    if color:
                        item.setForeground(QColor(color))
                self.setItem(r, c, item)
