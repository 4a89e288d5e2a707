"""Look and feel: Fusion style, a light or dark palette that follows the OS, plot colours.

Curve colours are Tableau 10 (distinct, colour-blind friendly, readable on light and dark
backgrounds). Class labels that mean "all is well" get green, fault-like ones warm colours,
so the score plot reads at a glance from across a trade-show floor.
"""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

PALETTE = (
    "#4E79A7", "#F28E2B", "#E15759", "#76B7B2", "#59A14F",
    "#EDC948", "#B07AA1", "#FF9DA7", "#9C755F", "#BAB0AC",
)
GOOD = "#3E9B4F"
WARN = "#E8A33D"
BAD = "#D64545"
ACCENT = "#2F7ED8"
_GOOD_WORDS = ("normal", "ok", "idle", "healthy", "good", "background", "noise", "silence")
_BAD_WORDS = ("fault", "fail", "error", "anomal", "broken", "alarm", "crack")


def label_color(label: str, index: int) -> str:
    """A stable colour for a class label: green for normal-ish, red for faults, else palette."""
    low = label.lower()
    if any(w in low for w in _GOOD_WORDS):
        return GOOD
    if any(w in low for w in _BAD_WORDS):
        return BAD
    usable = [c for c in PALETTE if c not in ("#59A14F", "#E15759")]
    return usable[index % len(usable)]


def is_dark(app: QGuiApplication | None = None) -> bool:
    forced = os.environ.get("TINYOPS_THEME", "").lower()
    if forced in ("dark", "light"):
        return forced == "dark"
    app = app or QGuiApplication.instance()
    if app is None:
        return False
    try:
        scheme = app.styleHints().colorScheme()
        if scheme == Qt.ColorScheme.Dark:
            return True
        if scheme == Qt.ColorScheme.Light:
            return False
    except AttributeError:  # Qt < 6.5
        pass
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128


def _dark_palette() -> QPalette:
    p = QPalette()
    base, window, text = QColor("#1E2126"), QColor("#272B31"), QColor("#E6E8EB")
    p.setColor(QPalette.ColorRole.Window, window)
    p.setColor(QPalette.ColorRole.WindowText, text)
    p.setColor(QPalette.ColorRole.Base, base)
    p.setColor(QPalette.ColorRole.AlternateBase, QColor("#2C3036"))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor("#32363D"))
    p.setColor(QPalette.ColorRole.ToolTipText, text)
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8A9099"))
    p.setColor(QPalette.ColorRole.Text, text)
    p.setColor(QPalette.ColorRole.Button, QColor("#30353C"))
    p.setColor(QPalette.ColorRole.ButtonText, text)
    p.setColor(QPalette.ColorRole.BrightText, QColor("#FF6B6B"))
    p.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#FFFFFF"))
    p.setColor(QPalette.ColorRole.Link, QColor("#6AAEF0"))
    p.setColor(QPalette.ColorRole.Mid, QColor("#3A3F47"))
    p.setColor(QPalette.ColorRole.Midlight, QColor("#454B54"))
    p.setColor(QPalette.ColorRole.Dark, QColor("#15171A"))
    p.setColor(QPalette.ColorRole.Light, QColor("#50565F"))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6E747C"))
    return p


def _light_palette() -> QPalette:
    p = QPalette()
    p.setColor(QPalette.ColorRole.Window, QColor("#F3F4F6"))
    p.setColor(QPalette.ColorRole.WindowText, QColor("#1F2328"))
    p.setColor(QPalette.ColorRole.Base, QColor("#FFFFFF"))
    p.setColor(QPalette.ColorRole.AlternateBase, QColor("#F6F8FA"))
    p.setColor(QPalette.ColorRole.Text, QColor("#1F2328"))
    p.setColor(QPalette.ColorRole.Button, QColor("#FAFBFC"))
    p.setColor(QPalette.ColorRole.ButtonText, QColor("#1F2328"))
    p.setColor(QPalette.ColorRole.Highlight, QColor(ACCENT))
    p.setColor(QPalette.ColorRole.HighlightedText, QColor("#FFFFFF"))
    p.setColor(QPalette.ColorRole.PlaceholderText, QColor("#8C959F"))
    p.setColor(QPalette.ColorRole.ToolTipBase, QColor("#FFFFFF"))
    p.setColor(QPalette.ColorRole.ToolTipText, QColor("#1F2328"))
    p.setColor(QPalette.ColorRole.Mid, QColor("#D0D7DE"))
    p.setColor(QPalette.ColorRole.Midlight, QColor("#E1E5EA"))
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText,
                 QPalette.ColorRole.WindowText):
        p.setColor(QPalette.ColorGroup.Disabled, role, QColor("#A0A7AF"))
    return p


STYLESHEET = """
QToolTip { padding: 4px; }
QListWidget#devices { border: none; }
QLabel[role="title"] { font-size: 15pt; font-weight: 600; }
QLabel[role="muted"] { color: palette(placeholder-text); }
QLabel[role="banner"] { padding: 6px 10px; border-radius: 4px; }
QPushButton { padding: 5px 12px; }
QPushButton[role="primary"] { font-weight: 600; }
QTabBar::tab { padding: 6px 16px; }
QHeaderView::section { padding: 4px 6px; }
"""


def apply(app: QApplication) -> bool:
    """Style the application; return whether the dark palette is in use."""
    app.setStyle("Fusion")
    dark = is_dark(app)
    app.setPalette(_dark_palette() if dark else _light_palette())
    app.setStyleSheet(STYLESHEET)
    return dark  # plots pick the palette up when they are built (pyqtgraph loads later)


def configure_plots(dark: bool) -> None:
    import pyqtgraph as pg

    pg.setConfigOptions(
        antialias=False,  # speed at high rates; lines are 1-2 px anyway
        background=plot_background(dark),
        foreground=plot_foreground(dark),
    )


def plot_background(dark: bool) -> str:
    return "#1B1E22" if dark else "#FFFFFF"


def plot_foreground(dark: bool) -> str:
    return "#C9CDD2" if dark else "#3A4048"


def grid_color(dark: bool) -> str:
    """Grid lines and axis lines: opaque (cheap to draw), a step off the background."""
    return "#363B42" if dark else "#E3E6EA"
