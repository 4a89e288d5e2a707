"""The main window's menus and keyboard shortcuts (also active with the menu bar hidden)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence

PAGES = ("model", "flash", "live", "console", "records", "fleet")
"""The window's page keys in tab order (``main_window`` imports them from here)."""
PAGE_TITLES = ("Model", "Flash", "Live", "Console", "Records", "Fleet")


def _action(win: Any, menu: Any, text: str, shortcut: Any, slot: Callable[..., Any]) -> QAction:
    action = QAction(text, win)
    if shortcut:
        action.setShortcut(QKeySequence(shortcut))
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    action.triggered.connect(slot)
    menu.addAction(action)
    win.addAction(action)  # shortcuts keep working with the menu bar hidden (kiosk)
    return action


def page_only(win: Any, page: Any, action: QAction) -> None:
    """A single-key shortcut fires only while focus is on its page (the menu item always)."""
    win.removeAction(action)
    action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
    page.addAction(action)


def build_menus(win: Any) -> None:
    from app.gui import help_dialogs, window_state

    bar = win.menuBar()
    f = bar.addMenu("&File")
    _action(win, f, "Open model…", QKeySequence.StandardKey.Open, win._open_model)
    _action(win, f, "Record telemetry…", "Ctrl+R", win.live._record_clicked)
    _action(win, f, "Replay recording…", "Ctrl+Shift+R", win._replay)
    _action(win, f, "Export dashboard as PNG…", "Ctrl+E", win.live._export_clicked)
    _action(win, f, "Operator name…", None, lambda: ask_operator(win))
    f.addSeparator()
    _action(win, f, "Quit", QKeySequence.StandardKey.Quit, win.close)
    d = bar.addMenu("&Device")
    _action(win, d, "Connect selected", "Ctrl+K", win._connect_selected)
    _action(win, d, "Disconnect", "Ctrl+Shift+K", win.disconnect)
    _action(win, d, "Start demo board", "Ctrl+D", win.start_demo)
    _action(win, d, "Start emulated Cortex-M4 (QEMU)", None, win.start_emulated)
    v = bar.addMenu("&View")
    for i, (key, title) in enumerate(zip(PAGES, PAGE_TITLES, strict=True)):
        _action(win, v, title, f"Ctrl+{i + 1}", lambda _=False, k=key: win.show_page(k))
    v.addSeparator()
    for text, key, slot in (("Pause live plots", "Space", win._toggle_pause),
                            ("Autoscale", "A", win.live.toggle_autoscale)):
        page_only(win, win.live, _action(win, v, text, key, slot))
    _action(win, v, "Full screen", "F11", win._toggle_full_screen)
    win.sidebar_action = _action(win, v, "Device list", "Ctrl+B",
                                 lambda checked: window_state.toggle_sidebar(win, checked))
    win.sidebar_action.setCheckable(True)
    win.sidebar_action.setChecked(True)
    a = bar.addMenu("&Actions")
    for text, key, page, slot in (
            ("Analyze model", "Ctrl+Shift+A", "model", lambda: win.model_page.analyze()),
            ("Quantize model", "Ctrl+Shift+Q", "model", lambda: win.model_page.quantize()),
            ("Flash and verify", "Ctrl+Shift+F", "flash",
             lambda: win.flash_page.flash_selected())):
        _action(win, a, text, key, lambda _=False, p=page, f=slot: _on_page(win, p, f))
    h = bar.addMenu("&Help")
    _action(win, h, "Getting started", "F1", lambda: help_dialogs.getting_started(win))
    _action(win, h, "Keyboard shortcuts", "Ctrl+/", lambda: show_shortcuts(win))
    h.addSeparator()
    _action(win, h, "About TinyOps", None, lambda: help_dialogs.about(win))


def _on_page(win: Any, page: str, action: Callable[[], Any]) -> None:
    """A main action by its shortcut: on its page (never in the kiosk)."""
    if win.options.kiosk:
        return
    win.show_page(page)
    action()


def shortcut_rows(win: Any) -> list[tuple[str, str]]:
    return [(a.text().replace("&", ""), a.shortcut().toString())
            for a in [*win.actions(), *win.live.actions()] if not a.shortcut().isEmpty()]


def show_shortcuts(win: Any) -> Any:
    """Help → Keyboard shortcuts: a small table in a dialog (not a message banner)."""
    from PySide6.QtWidgets import (
        QDialog,
        QDialogButtonBox,
        QTableWidget,
        QTableWidgetItem,
        QVBoxLayout,
    )

    rows = shortcut_rows(win)
    dialog = QDialog(win)
    dialog.setWindowTitle("Keyboard shortcuts")
    table = QTableWidget(len(rows), 2, dialog)
    table.setHorizontalHeaderLabels(["Action", "Shortcut"])
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for r, (text, key) in enumerate(rows):
        table.setItem(r, 0, QTableWidgetItem(text))
        table.setItem(r, 1, QTableWidgetItem(key))
    table.resizeColumnsToContents()
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.close)
    lay = QVBoxLayout(dialog)
    lay.addWidget(table)
    lay.addWidget(buttons)
    dialog.resize(420, 480)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()  # not modal: the window keeps running
    win.shortcuts_dialog = dialog
    return dialog


def ask_operator(win: Any) -> str | None:
    """Ask for the operator name written into every provisioning record (GUI and CLI)."""
    from PySide6.QtWidgets import QInputDialog

    name, ok = QInputDialog.getText(win, "Operator", "Operator name for the provisioning "
                                    "records of this station:", text=win.settings.operator)
    if not ok:
        return None
    win.settings.operator = name
    win.message.show_message("info", f"Operator: {win.settings.operator}",
                             "every provisioning record from this station names them")
    return win.settings.operator
