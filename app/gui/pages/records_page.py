"""The Records page: provisioning records (one row per flash/validate), filter, export CSV."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
)
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.gui.context import AppContext
from app.gui.workers import describe_error
from tinyops_base.errors import TinyOpsError

SHOWN = ("time", "operation", "result", "verify", "board", "port", "usb_serial", "artifact",
         "artifact_sha256", "backend", "duration_s", "operator", "error")
TITLES = {"time": "Time", "operation": "Operation", "result": "Result", "verify": "Verify",
          "board": "Board", "port": "Port", "usb_serial": "USB serial", "artifact": "Artifact",
          "artifact_sha256": "SHA-256", "backend": "Back end", "duration_s": "Duration",
          "operator": "Operator", "error": "Error"}
Index = QModelIndex | QPersistentModelIndex
_HEX = re.compile(r"\b[0-9a-f]{32,}\b")


def load_records(limit: int = 5000) -> list[dict[str, Any]]:
    from fleet_ops.records import open_store

    return [r.to_dict() for r in open_store().list(limit=limit)]


class RecordsModel(QAbstractTableModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[dict[str, Any]] = []

    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self.beginResetModel()
        self.rows = rows
        self.endResetModel()

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(SHOWN)

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return TITLES[SHOWN[section]]
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row = self.rows[index.row()]
        key = SHOWN[index.column()]
        value = row.get(key)
        if role == Qt.ItemDataRole.DisplayRole:
            if value is None:
                return ""
            if key == "duration_s":
                return f"{float(value):.2f} s"
            if key == "artifact_sha256":
                return str(value)[:12] + "…"
            if key == "time":
                return str(value).replace("T", " ")[:19]
            return _HEX.sub(lambda m: m.group(0)[:12] + "…", str(value))
        if role == Qt.ItemDataRole.ToolTipRole:
            return "" if value is None else str(value)
        if role == Qt.ItemDataRole.ForegroundRole and key == "result":
            return QColor({"ok": theme.GOOD, "failed": theme.BAD}.get(str(value), theme.WARN))
        if role == Qt.ItemDataRole.UserRole:
            return row
        return None


class RecordsPage(QWidget):
    def __init__(self, ctx: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.model = RecordsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter (board, serial, result, artifact…)")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.count = QLabel(self)
        self.count.setProperty("role", "muted")
        self.refresh_button = QPushButton("Refresh", self)
        self.refresh_button.clicked.connect(self.refresh)
        self.export_button = QPushButton("Export CSV…", self)
        self.export_button.clicked.connect(self._export_clicked)
        self.table = QTableView(self)
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.setAlternatingRowColors(True)
        self.table.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        top = QHBoxLayout()
        top.addWidget(self.filter, 1)
        top.addWidget(self.count)
        top.addWidget(self.refresh_button)
        top.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 8, 8)
        lay.addLayout(top)
        lay.addWidget(self.table, 1)
        self.proxy.rowsInserted.connect(self._update_count)
        self.proxy.modelReset.connect(self._update_count)
        self.proxy.layoutChanged.connect(self._update_count)
        self.filter.textChanged.connect(self._update_count)
        self._loaded = False
        self._sorted = False

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self.refresh()

    def refresh(self) -> None:
        self._loaded = True
        job = self.ctx.runner.submit(load_records, name="records", pass_context=False)
        job.succeeded.connect(self._loaded_rows)
        job.failed.connect(self.ctx.report_error)

    def _loaded_rows(self, rows: list[dict[str, Any]]) -> None:
        self.model.set_rows(rows)
        self.table.resizeColumnsToContents()
        if not self._sorted:
            self._sorted = True
            self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest first
        self._update_count()

    def _update_count(self, *_: Any) -> None:
        shown, total = self.proxy.rowCount(), self.model.rowCount()
        noun = "record" if total == 1 else "records"
        self.count.setText(f"{shown} of {total} {noun}" if shown != total
                           else f"{total} {noun}")

    def visible_rows(self) -> list[dict[str, Any]]:
        return [self.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole)
                for r in range(self.proxy.rowCount())]

    def _export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export records", "tinyops-records.csv",
                                              "CSV files (*.csv)")
        if path:
            self.export_csv(path)

    def export_csv(self, path: str) -> int:
        """Write the rows the filter shows (all columns) to ``path``."""
        from fleet_ops.records import write_csv

        rows = self.visible_rows()
        try:
            write_csv(rows, path)
        except TinyOpsError as exc:
            self.ctx.report_error(describe_error(exc))
            return 0
        self.ctx.report_info(f"exported {len(rows)} records to {path}")
        return len(rows)
