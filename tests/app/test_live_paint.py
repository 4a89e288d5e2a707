"""One paint per live frame: pyqtgraph moves its views' transforms when a paint starts,
which would mark every curve dirty again and repaint the whole view a second time."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QObject
from PySide6.QtWidgets import QApplication

from app.gui.live.dashboard import LiveDashboard
from device_drivers.telemetry import TelemetryBatch

T0 = 1_700_000_000.0


class Paints(QObject):
    count = 0

    def eventFilter(self, obj, event):  # type: ignore[no-untyped-def]
        if event.type() == QEvent.Type.Paint:
            self.count += 1
        return False


def test_each_frame_is_painted_once(qtbot) -> None:
    dash = LiveDashboard(window_s=1.0, dark=False)
    qtbot.addWidget(dash)
    dash.timer.stop()  # frames driven here
    dash.resize(1000, 700)
    dash.show()
    qtbot.waitExposed(dash)
    app = QApplication.instance()
    paints = Paints()
    dash.view.viewport().installEventFilter(paints)
    n = 0
    frames = 40
    warm = 30  # 1.5 s of data: the window is full, the time axis moves every frame
    for frame in range(frames + warm):
        t = T0 + (n + np.arange(50)) / 1000.0
        n += 50
        dash.store.push(TelemetryBatch(channels={
            f"ch{c}": (t, np.sin(t * (c + 1))) for c in range(8)}))
        dash.tick()
        app.processEvents()
        app.processEvents()  # anything queued by the paint itself (a second paint) lands here
        if frame == warm - 1:
            paints.count = 0
    assert dash.samples_total == 8 * 50 * (frames + warm)
    assert frames * 0.9 <= paints.count <= frames * 1.1, f"{paints.count} paints"
