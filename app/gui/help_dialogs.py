"""Help → Getting started and About."""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMessageBox, QTextBrowser, QVBoxLayout

GETTING_STARTED = """
<h2>Getting started with TinyOps</h2>
<ol>
<li><b>Connect a board.</b> Plug it in: it appears in the device list on the left
(Ctrl+B shows or hides the list). Select it and press <i>Connect</i>. No board? Press
<i>Demo board</i> (Ctrl+D): a built-in virtual board runs the example vibration model.</li>
<li><b>Check a model</b> on the <i>Model</i> page (Ctrl+1): pick a .tflite, .keras or .h5 file,
choose the board and press <i>Analyze</i>. The gauge says whether it fits the board's flash
and RAM; the tensor arena is TFLM's measured minimum.</li>
<li><b>Quantize</b> a float model to int8 with calibration data (a few hundred typical inputs).
The result goes to a new file (<i>Save as</i>); an existing file is only replaced if you agree.
The first run loads TensorFlow, which takes about 10 seconds.</li>
<li><b>Flash</b> on the <i>Flash</i> page (Ctrl+2): tick the boards, press <i>Flash and
verify</i>. Success means the device itself reported the model's sha256. If anything fails
the board keeps running its previous model, and the page says which.</li>
<li><b>Watch it run</b> on the <i>Live</i> page (Ctrl+3): class probabilities, latency and
the board's health. Ctrl+R records telemetry to CSV.</li>
</ol>
<p>Every flash and validation is written to the provisioning records (<i>Records</i> page,
or <code>tinyops records</code>). Problems with ports or permissions:
run <code>tinyops doctor</code> in a terminal.</p>
"""


def version() -> str:
    try:
        return metadata.version("tinyops")
    except metadata.PackageNotFoundError:
        return "development"


def getting_started(win: Any) -> QDialog:
    dialog = QDialog(win)
    dialog.setWindowTitle("Getting started")
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    text = QTextBrowser(dialog)
    text.setOpenExternalLinks(True)
    text.setHtml(GETTING_STARTED)
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, dialog)
    buttons.rejected.connect(dialog.close)
    lay = QVBoxLayout(dialog)
    lay.addWidget(text)
    lay.addWidget(buttons)
    screen = win.screen().availableGeometry() if win.screen() else None
    dialog.resize(min(640, screen.width() if screen else 640),
                  min(520, screen.height() - 40 if screen else 520))
    dialog.show()
    return dialog


def about_text() -> str:
    from PySide6 import __version__ as pyside

    return (f"<h3>TinyOps {version()}</h3>"
            "<p>Desktop tool for TinyML device management: detect boards, quantize models "
            "for TensorFlow Lite Micro, flash them with on-device verification, and plot "
            "live inference. Offline, no account.</p>"
            f"<p>Python {platform.python_version()} · PySide6 {pyside} · "
            f"{platform.system()} {platform.machine()}</p>")


def about(win: Any) -> None:
    QMessageBox.about(win, "About TinyOps", about_text())
