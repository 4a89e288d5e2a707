"""The Flash page's target list: exactly the boards that are connected, and which are chosen.

Rules (issue 11, "safe targets"):

- a board that vanishes is unticked at once and stays in the list, greyed, marked *gone*
  (it cannot be ticked again until it comes back);
- a newly connected board is ticked when no connected board is ticked (so a vanished demo
  board is never the only "choice" while a real board sits unticked); otherwise it is
  added unticked and marked *new*, and the summary line says so;
- ``chosen()`` returns only boards that are connected *and* ticked.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QWidget

ROLE_ENTRY = Qt.ItemDataRole.UserRole
ROLE_GONE = Qt.ItemDataRole.UserRole + 1
ROLE_NEW = Qt.ItemDataRole.UserRole + 2
MAX_GONE = 4  # vanished boards kept on show (the newest)
EMPTY_TEXT = "No boards: plug one in or start the demo board (Ctrl+D)"


def _label(entry: Any, gone: bool = False, new: bool = False) -> str:
    text = f"{entry.title} — {entry.port}" + (f" · SN {entry.serial}" if entry.serial else "")
    if gone:
        return text + " · gone (unplugged): not a target"
    return text + (" · new" if new else "")


class TargetList(QListWidget):
    changed = Signal()  # ticks or membership changed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.itemChanged.connect(self._item_changed)
        self._syncing = False
        self._gone_color = QColor("#8C959F")

    # ------------------------------------------------------------------ queries
    def _items(self) -> list[QListWidgetItem]:
        return [self.item(i) for i in range(self.count())
                if self.item(i).data(ROLE_ENTRY) is not None]

    def _present(self) -> list[QListWidgetItem]:
        return [it for it in self._items() if not it.data(ROLE_GONE)]

    def chosen(self) -> list[Any]:
        """Connected and ticked boards (never a gone one)."""
        return [it.data(ROLE_ENTRY) for it in self._present()
                if it.checkState() == Qt.CheckState.Checked]

    def connected(self) -> list[Any]:
        return [it.data(ROLE_ENTRY) for it in self._present()]

    def gone(self) -> list[Any]:
        return [it.data(ROLE_ENTRY) for it in self._items() if it.data(ROLE_GONE)]

    def is_checked(self, port: str) -> bool:
        return any(e.port == port for e in self.chosen())

    def summary(self) -> str:
        present, chosen = self.connected(), self.chosen()
        if not present:
            return "no board connected"
        text = f"{len(chosen)} of {len(present)} connected board(s) chosen"
        new = [it.data(ROLE_ENTRY).port for it in self._present()
               if it.data(ROLE_NEW) and it.checkState() != Qt.CheckState.Checked]
        if new:
            text += f" · new, not ticked: {', '.join(new)}"
        gone = self.gone()
        if gone:
            text += f" · {len(gone)} gone"
        return text

    # ------------------------------------------------------------------ changes
    def sync(self, entries: list[Any], connected_port: str | None) -> None:
        """Bring the list in line with the boards connected now."""
        self._syncing = True
        try:
            self._sync(entries, connected_port)
        finally:
            self._syncing = False
        self.changed.emit()

    def _sync(self, entries: list[Any], connected_port: str | None) -> None:
        present = {e.port: e for e in entries}
        for i in reversed(range(self.count())):
            if self.item(i).data(ROLE_ENTRY) is None:  # the "no boards" line
                self.takeItem(i)
        by_port = {it.data(ROLE_ENTRY).port: it for it in self._items()}
        for port, item in by_port.items():
            if port not in present and not item.data(ROLE_GONE):
                self._mark_gone(item)
        first_sync = not by_port
        for port, entry in present.items():
            item = by_port.get(port)
            if item is None:
                item = QListWidgetItem()
                self.insertItem(len(self._present()), item)
                item.setData(ROLE_NEW, not first_sync)
                item.setCheckState(Qt.CheckState.Unchecked)
            elif item.data(ROLE_GONE):  # it came back: a target again, but not ticked
                item.setData(ROLE_GONE, False)
                item.setData(ROLE_NEW, True)
                item.setForeground(self.palette().text())
            item.setData(ROLE_ENTRY, entry)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
                          | Qt.ItemFlag.ItemIsUserCheckable)
            item.setText(_label(entry, new=bool(item.data(ROLE_NEW))))
            item.setToolTip(f"{entry.title} on {entry.port}")
        present_items = self._present()
        if present_items and not any(it.checkState() == Qt.CheckState.Checked
                                     for it in present_items):
            # nothing chosen among the connected boards: choose the one the window is
            # connected to, else the newest (never leave a new board out silently)
            pick = next((it for it in present_items
                         if it.data(ROLE_ENTRY).port == connected_port), present_items[-1])
            pick.setCheckState(Qt.CheckState.Checked)
        gone = [it for it in self._items() if it.data(ROLE_GONE)]
        for it in gone[:-MAX_GONE] if len(gone) > MAX_GONE else []:
            self.takeItem(self.row(it))
        if not self.count():
            placeholder = QListWidgetItem(EMPTY_TEXT)
            placeholder.setFlags(Qt.ItemFlag.NoItemFlags)
            self.addItem(placeholder)

    def _mark_gone(self, item: QListWidgetItem) -> None:
        item.setCheckState(Qt.CheckState.Unchecked)
        item.setData(ROLE_GONE, True)
        item.setData(ROLE_NEW, False)
        item.setFlags(Qt.ItemFlag.NoItemFlags)  # cannot be ticked while it is away
        item.setForeground(self._gone_color)
        item.setText(_label(item.data(ROLE_ENTRY), gone=True))
        self.takeItem(self.row(item))
        self.addItem(item)  # gone boards go to the end

    def tick_all(self) -> None:
        self._syncing = True
        try:
            for it in self._present():
                it.setCheckState(Qt.CheckState.Checked)
        finally:
            self._syncing = False
        self.changed.emit()

    def _item_changed(self, item: QListWidgetItem) -> None:
        if self._syncing:
            return
        if item.data(ROLE_NEW) and item.checkState() == Qt.CheckState.Checked:
            item.setData(ROLE_NEW, False)  # the user has seen it
            self._syncing = True
            item.setText(_label(item.data(ROLE_ENTRY)))
            self._syncing = False
        self.changed.emit()
