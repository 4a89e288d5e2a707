"""The main window's layout state: saved/restored geometry (clamped to the screen), the
collapsible device sidebar, and kiosk mode (full screen live view with a title)."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QToolButton

DEFAULT_SIZE = (1360, 860)
SIDEBAR_WIDTH = 250
COMPACT_WIDTH = 1200  # narrower screens start with the device list collapsed
KIOSK_TITLE = "TinyOps · live TinyML inference"
KIOSK_DEMO_TITLE = "TinyOps demo · vibration monitoring on a microcontroller, live"


def restore(win: Any, pages: tuple[str, ...]) -> None:
    geometry = win.settings.get("window/geometry")
    if not geometry.isEmpty():
        win.restoreGeometry(geometry)
    else:
        win.resize(*DEFAULT_SIZE)
    state = win.settings.get("window/state")
    if not state.isEmpty():
        win.restoreState(state)
    page = win.settings.get("window/page")
    if page in pages and not win.options.demo:
        win.tabs.setCurrentIndex(pages.index(page))
    else:
        win.tabs.setCurrentIndex(pages.index("live"))
    clamp_to_screen(win)


def clamp_to_screen(win: Any) -> None:
    """Never larger than the screen's available area, never off it (a saved 1360×860 on
    a 1024×600 screen would hide the Connect buttons and the status bar)."""
    screen = win.screen()
    if screen is None:
        return
    avail = screen.availableGeometry()
    w, h = min(win.width(), avail.width()), min(win.height(), avail.height())
    if (w, h) != (win.width(), win.height()):
        win.resize(w, h)
    x = min(max(win.x(), avail.x()), avail.x() + avail.width() - w)
    y = min(max(win.y(), avail.y()), avail.y() + avail.height() - h)
    if (x, y) != (win.x(), win.y()):
        win.move(x, y)


def save(win: Any) -> None:
    s = win.settings
    if not win.options.kiosk:
        s.set("window/geometry", win.saveGeometry())
        s.set("window/state", win.saveState())
        s.set("window/page", win.current_page())
    s.set("live/window_s", win.live.window_s)
    s.set("live/autoscale", win.live.autoscale)
    s.set("console/timestamps", win.console.timestamps.isChecked())
    s.sync()


def sidebar_visible(win: Any) -> bool:
    return win.splitter.sizes()[0] > 0 and win.devices.isVisible()


def toggle_sidebar(win: Any, show: bool | None = None) -> None:
    """Collapse or restore the device list (View → Device list, Ctrl+B)."""
    if win.options.kiosk:
        return
    show = not sidebar_visible(win) if show is None else show
    total = sum(win.splitter.sizes()) or win.width()
    win.devices.setVisible(True)
    win.splitter.setSizes([SIDEBAR_WIDTH, max(1, total - SIDEBAR_WIDTH)] if show
                          else [0, total])
    for name in ("sidebar_action", "sidebar_button"):
        widget = getattr(win, name, None)
        if widget is not None:
            widget.setChecked(show)


def install_sidebar_toggle(win: Any) -> None:
    """A "Devices" button left of the page tabs shows or hides the device list; on a small
    screen (1024×600) the list starts collapsed, so every page gets the full width."""
    button = QToolButton(win)
    button.setText("☰ Devices")
    button.setToolTip("Show or hide the device list (Ctrl+B)")
    button.setCheckable(True)
    button.setChecked(True)
    button.setAutoRaise(True)
    button.clicked.connect(lambda checked: toggle_sidebar(win, checked))
    win.sidebar_button = button
    win.tabs.setCornerWidget(button, Qt.Corner.TopLeftCorner)
    screen = win.screen()
    if screen is not None and screen.availableGeometry().width() < COMPACT_WIDTH \
            and not win.options.kiosk:
        toggle_sidebar(win, False)


def enter_kiosk(win: Any, pages: tuple[str, ...]) -> None:
    win.menuBar().hide()
    win.devices.hide()
    win.status.hide()  # connection state is on the dashboard; no developer figures
    win.live.set_kiosk(True)
    win.tabs.tabBar().hide()
    win.tabs.setCurrentIndex(pages.index("live"))
    for i in range(win.tabs.count()):
        win.tabs.setTabEnabled(i, pages[i] == "live")
    title = QLabel(KIOSK_DEMO_TITLE if win.options.demo else KIOSK_TITLE, win)
    title.setObjectName("kioskTitle")
    title.setAlignment(Qt.AlignmentFlag.AlignCenter)
    font = title.font()
    font.setPointSizeF(font.pointSizeF() * 1.8)
    font.setBold(True)
    title.setFont(font)
    win.kiosk_title = title
    win.right_layout.insertWidget(0, title)


def set_kiosk_demo(win: Any, demo: bool) -> None:
    """The kiosk title says when it shows the built-in demo board."""
    title = getattr(win, "kiosk_title", None)
    if title is not None:
        title.setText(KIOSK_DEMO_TITLE if demo else KIOSK_TITLE)
