"""Tooltips for every action button, in one place (what it does, and its shortcut), and
the keyboard rule that Tab leaves a table (arrow keys move inside it)."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QAbstractButton, QAbstractItemView

TIPS: dict[tuple[str, str], str] = {
    ("ModelPage", "Browse…"): "Pick a file",
    ("ModelPage", "Analyze"): "Check the model: operators, tensors, arena, whether it fits "
                              "the board (Ctrl+Shift+A)",
    ("ModelPage", "Cancel"): "Stop the running analysis or quantization",
    ("ModelPage", "Save as…"): "Where the quantized model is written (an existing file is "
                               "only replaced if you agree)",
    ("ModelPage", "Quantize"): "Convert the float model to int8 with the calibration data, "
                               "evaluate it as the device would and write its card "
                               "(Ctrl+Shift+Q)",
    ("ModelPage", "Export…"): "Export the model as a C array or for a board's firmware",
    ("ModelPage", "Flash this model →"): "Open the Flash page with this model",
    ("FlashPage", "Browse…"): "Pick the model or firmware image to flash",
    ("FlashPage", "Cancel"): "Stop the running flashes (a board keeps its previous model)",
    ("LivePage", "Stop replay"): "Stop the replay and go back to the live source",
    ("ConsolePage", "Timestamps"): "Show the host time each line arrived",
    ("ConsolePage", "Send"): "Send the text to the board (Enter)",
    ("ConsolePage", "Save…"): "Save the console's lines to a text file",
    ("ConsolePage", "Clear"): "Forget the console's lines",
    ("RecordsPage", "Refresh"): "Read the provisioning records again",
    ("RecordsPage", "Export CSV…"): "Save the records shown as CSV",
    ("FleetPage", "Use"): "Use this records server (blank: this computer's records file)",
    ("DevicePanel", "Connect"): "Connect to the selected board (Ctrl+K; double-click works too)",
}


def apply(win: Any, pages: list[Any]) -> int:
    """Give every button on ``pages`` without a tooltip its tip; returns how many lack one
    still (pyqtgraph's own context menus are not ours and are skipped)."""
    missing = 0
    for page in pages:
        for button in page.findChildren(QAbstractButton):
            if button.toolTip() or not button.text() or button.window() is not win:
                continue
            tip = TIPS.get((type(page).__name__, button.text()))
            if tip:
                button.setToolTip(tip)
            else:
                missing += 1
    return missing


def tab_leaves_tables(root: Any) -> int:
    """Tab moves focus to the next control instead of the next cell (it was trapped in
    tables); returns how many views were changed."""
    views = root.findChildren(QAbstractItemView)
    for view in views:
        view.setTabKeyNavigation(False)
    return len(views)
