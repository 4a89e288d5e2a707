"""Messages float over the pages (never move them), have the right kind; the shortcuts are a
dialog; every action button has a tooltip; the main actions have shortcuts."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractButton


def test_a_message_does_not_move_the_page(qtbot, make_window) -> None:
    win = make_window(watch=False)
    win.show_page("model")
    button = win.model_page.analyze_button
    qtbot.wait(100)
    before = button.mapTo(win, button.rect().topLeft())
    win.message.show_message("error", "something failed", "do this")
    qtbot.wait(100)
    assert win.message.isVisible()
    assert button.mapTo(win, button.rect().topLeft()) == before  # nothing shifted
    win.message.dismiss()
    qtbot.wait(100)
    assert button.mapTo(win, button.rect().topLeft()) == before


def test_shortcuts_are_a_dialog_and_main_actions_have_them(qtbot, make_window) -> None:
    from app.gui.menus import shortcut_rows, show_shortcuts

    win = make_window(watch=False)
    rows = dict(shortcut_rows(win))
    assert rows["Analyze model"] == "Ctrl+Shift+A" and rows["Quantize model"] == "Ctrl+Shift+Q"
    assert rows["Flash and verify"] == "Ctrl+Shift+F"
    dialog = show_shortcuts(win)
    assert dialog.isVisible() and not win.message.isVisible()  # not a "Fix:" banner
    dialog.close()
    win.show_page("live")
    mods = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier
    qtbot.keyClick(win, Qt.Key.Key_A, modifier=mods)
    assert win.current_page() == "model"  # Analyze went to its page (and ran or said why)


def test_every_action_button_has_a_tooltip(qtbot, make_window) -> None:
    win = make_window(watch=False)
    pages = [win.model_page, win.flash_page, win.live, win.console, win.records_page,
             win.fleet_page, win.devices]
    missing = [f"{type(p).__name__}:{b.text()}" for p in pages
               for b in p.findChildren(QAbstractButton)
               if b.text() and not b.toolTip() and b.window() is win]
    assert not missing, missing


def test_tab_leaves_a_table(qtbot, make_window) -> None:
    win = make_window(watch=False)
    win.show_page("flash")
    table = win.flash_page.table
    table.setFocus()
    qtbot.waitUntil(table.hasFocus, timeout=2000)
    qtbot.keyClick(table, Qt.Key.Key_Tab)
    assert not table.hasFocus()  # focus moved on to the next control
