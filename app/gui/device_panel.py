"""The device list on the left of the main window."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from app.gui import theme
from app.gui.devices import DeviceEntry

ROLE_ENTRY = Qt.ItemDataRole.UserRole + 1
ROLE_STATUS = Qt.ItemDataRole.UserRole + 2  # "", connecting, connected, lost


class DeviceDelegate(QStyledItemDelegate):
    """Two lines per device: name with badges; port, mode, serial and status beneath."""

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        fm = option.fontMetrics
        return QSize(200, fm.height() * 2 + 18)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        entry: DeviceEntry | None = index.data(ROLE_ENTRY)
        status: str = index.data(ROLE_STATUS) or ""
        if entry is None:
            return super().paint(painter, option, index)
        painter.save()
        pal = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        rect = option.rect.adjusted(4, 2, -4, -2)
        if selected:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(pal.color(QPalette.ColorRole.Highlight))
            painter.drawRoundedRect(rect, 5, 5)
        text_color = pal.color(QPalette.ColorRole.HighlightedText if selected
                               else QPalette.ColorRole.Text)
        muted = QColor(text_color)
        muted.setAlphaF(0.7)
        dot = {"connected": theme.GOOD, "connecting": theme.WARN, "lost": theme.BAD}.get(status)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        x = rect.left() + 10
        fm = option.fontMetrics
        top = rect.top() + 6
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(dot) if dot else muted.darker(110) if selected else
                         pal.color(QPalette.ColorRole.Mid))
        painter.drawEllipse(x, top + fm.height() // 2 - 4, 9, 9)
        x += 18
        bold = QFont(option.font)
        bold.setWeight(QFont.Weight.DemiBold)
        painter.setFont(bold)
        painter.setPen(text_color)
        bfm = painter.fontMetrics()
        badges = []
        if entry.virtual:
            badges.append(("VIRTUAL", "#7E57C2"))
        if entry.mode == "bootloader":
            badges.append(("BOOTLOADER", theme.WARN))
        avail = rect.right() - x - sum(bfm.horizontalAdvance(b) + 16 for b, _ in badges) - 4
        name = bfm.elidedText(entry.title, Qt.TextElideMode.ElideRight, max(40, avail))
        painter.drawText(x, top + bfm.ascent(), name)
        bx = x + bfm.horizontalAdvance(name) + 8
        small = QFont(option.font)
        small.setPointSizeF(max(6.5, option.font.pointSizeF() * 0.72))
        small.setWeight(QFont.Weight.Bold)
        painter.setFont(small)
        sfm = painter.fontMetrics()
        for text, color in badges:
            w = sfm.horizontalAdvance(text) + 10
            badge = QRect(bx, top + 1, w, sfm.height() + 2)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(color))
            painter.drawRoundedRect(badge, 3, 3)
            painter.setPen(QColor("#FFFFFF"))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
            bx += w + 6
        painter.setFont(option.font)
        painter.setPen(muted)
        parts = [entry.port]
        if entry.serial:
            parts.append(f"SN {entry.serial}")
        if status == "connected":
            parts.append((entry.runtime or "connected").replace("tinyops-runtime", "runtime"))
        elif status:
            parts.append(status)
        elif entry.mode not in ("unknown", "app"):
            parts.append(entry.mode)
        line = fm.elidedText(" · ".join(parts), Qt.TextElideMode.ElideMiddle,
                             rect.right() - x - 4)
        painter.drawText(x, top + fm.height() + 4 + fm.ascent(), line)
        painter.restore()
        return None


class DevicePanel(QWidget):
    """List of devices with Connect/Disconnect and the demo board button."""

    connect_requested = Signal(str)
    disconnect_requested = Signal()
    demo_requested = Signal()
    selection_changed = Signal(object)  # DeviceEntry | None
    changed = Signal()  # a device was added, updated or removed

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setMinimumWidth(230)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(8, 8, 4, 8)
        lay.setSpacing(6)
        title = QLabel("Devices", self)
        title.setProperty("role", "title")
        lay.addWidget(title)
        self.list = QListWidget(self)
        self.list.setObjectName("devices")
        self.list.setItemDelegate(DeviceDelegate(self.list))
        self.list.setUniformItemSizes(True)
        self.list.setSpacing(1)
        self.list.itemDoubleClicked.connect(self._activate)
        self.list.currentItemChanged.connect(self._current_changed)
        self.empty = QLabel("No boards found.\n\nPlug one in, or start the demo board.",
                            self)
        self.empty.setProperty("role", "muted")
        self.empty.setWordWrap(True)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget(self)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.list)
        lay.addWidget(self.stack, 1)
        buttons = QHBoxLayout()
        self.connect_button = QPushButton("Connect", self)
        self.connect_button.setProperty("role", "primary")
        self.connect_button.clicked.connect(self._toggle)
        self.demo_button = QPushButton("Demo board", self)
        self.demo_button.setToolTip("Start the built-in virtual board running the example model "
                                    "(Ctrl+D)")
        self.demo_button.clicked.connect(self.demo_requested)
        buttons.addWidget(self.connect_button, 1)
        buttons.addWidget(self.demo_button, 1)
        lay.addLayout(buttons)
        self.connected_port: str | None = None
        self._status: dict[str, str] = {}
        self._update()

    # ------------------------------------------------------------------ model
    def _find(self, port: str) -> QListWidgetItem | None:
        for i in range(self.list.count()):
            item = self.list.item(i)
            if item.data(ROLE_ENTRY).port == port:
                return item
        return None

    def add_device(self, entry: DeviceEntry) -> None:
        item = self._find(entry.port)
        if item is None:
            item = QListWidgetItem()
            self.list.addItem(item)
        else:  # a rescan knows less than the connection did: keep the runtime version
            old = item.data(ROLE_ENTRY)
            if entry.runtime is None and old is not None and old.runtime:
                from app.gui.devices import with_runtime

                entry = with_runtime(entry, old.runtime)
        item.setData(ROLE_ENTRY, entry)
        item.setData(ROLE_STATUS, self._status.get(entry.port, ""))
        item.setToolTip(self._tooltip(entry))
        if self.list.currentItem() is None:
            self.list.setCurrentItem(item)
        self._update()
        self.changed.emit()

    def remove_device(self, port: str) -> None:
        item = self._find(port)
        if item is not None:
            self.list.takeItem(self.list.row(item))
        self._update()
        self.changed.emit()

    def devices(self) -> list[DeviceEntry]:
        return [self.list.item(i).data(ROLE_ENTRY) for i in range(self.list.count())]

    def entry(self, port: str) -> DeviceEntry | None:
        item = self._find(port)
        return item.data(ROLE_ENTRY) if item else None

    def selected(self) -> DeviceEntry | None:
        item = self.list.currentItem()
        return item.data(ROLE_ENTRY) if item else None

    def select(self, port: str) -> None:
        item = self._find(port)
        if item is not None:
            self.list.setCurrentItem(item)

    def set_status(self, port: str | None, status: str) -> None:
        """Show a port's connection state (``connected``, ``connecting``, ``lost``, "")."""
        for p in list(self._status):
            if p != port and status:
                self._status[p] = ""
        if port is not None:
            self._status[port] = status
        self.connected_port = port if status in ("connected", "connecting") else None
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setData(ROLE_STATUS, self._status.get(item.data(ROLE_ENTRY).port, ""))
        self._update()

    def set_runtime(self, port: str, runtime: str | None) -> None:
        item = self._find(port)
        if item is not None:
            from app.gui.devices import with_runtime

            item.setData(ROLE_ENTRY, with_runtime(item.data(ROLE_ENTRY), runtime))

    # ------------------------------------------------------------------ UI
    @staticmethod
    def _tooltip(e: DeviceEntry) -> str:
        rows = [f"<b>{e.title}</b>", f"port: {e.port}"]
        if e.board_id:
            rows.append(f"board: {e.board_id}")
        rows.append(f"mode: {e.mode}")
        if e.serial:
            rows.append(f"USB serial: {e.serial}")
        if e.backend:
            rows.append(f"flashing: {e.backend}")
        if e.detail:
            rows.append(e.detail)
        return "<br>".join(rows)

    def _update(self) -> None:
        has = self.list.count() > 0
        self.stack.setCurrentWidget(self.list if has else self.empty)
        sel = self.selected()
        if sel is not None and sel.port == self.connected_port:
            self.connect_button.setText("Disconnect")
            self.connect_button.setEnabled(True)
        else:
            self.connect_button.setText("Connect")
            self.connect_button.setEnabled(sel is not None)

    def _toggle(self) -> None:
        sel = self.selected()
        if sel is None:
            return
        if sel.port == self.connected_port:
            self.disconnect_requested.emit()
        else:
            self.connect_requested.emit(sel.port)

    def _activate(self, item: QListWidgetItem) -> None:
        entry = item.data(ROLE_ENTRY)
        if entry.port != self.connected_port:
            self.connect_requested.emit(entry.port)

    def _current_changed(self, *_: object) -> None:
        self._update()
        self.selection_changed.emit(self.selected())

    def set_locked(self, locked: bool) -> None:
        self.connect_button.setEnabled(not locked)
        self.demo_button.setEnabled(not locked)
        self.list.setEnabled(not locked)
