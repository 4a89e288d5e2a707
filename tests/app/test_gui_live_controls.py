"""Item 7: controls that behave - page-only single-key shortcuts, Follow after a zoom,
wheel zooms time only, the REC badge, replay with a timeline and an end state."""

from __future__ import annotations

import json

import numpy as np
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent

from device_drivers.telemetry import TelemetryParser


def _feed(dash, seconds: float = 3.0, t0_ms: int = 0) -> None:
    parser = TelemetryParser(fmt="json")
    lines = [json.dumps({"t": t0_ms + i, "scores": {"a": 0.3, "b": 0.7}, "latency_us": 900 + i})
             for i in range(int(seconds * 1000))]
    parser.feed(("\n".join(lines) + "\n").encode(), (t0_ms + len(lines)) / 1000)
    dash.store.push(parser.drain())
    dash.tick()


def test_single_key_shortcuts_only_fire_on_the_live_page(qtbot, make_window) -> None:
    win = make_window(watch=False)
    win.live.build()
    win.show_page("model")
    qtbot.waitUntil(lambda: win.model_page.isVisible())
    win.model_page.setFocus()
    before = win.live.auto_button.isChecked()
    qtbot.keyClick(win.model_page, Qt.Key.Key_A)
    assert win.live.auto_button.isChecked() == before  # not on the Model page
    win.show_page("live")
    qtbot.waitUntil(lambda: win.live.hasFocus() or win.live.isAncestorOf(win.focusWidget()))
    qtbot.keyClick(win.focusWidget(), Qt.Key.Key_A)
    assert win.live.auto_button.isChecked() != before


def test_wheel_zooms_time_only_and_follow_resets_the_view(qtbot) -> None:
    from app.gui.pages.live_page import LivePage

    page = LivePage(window_s=5)
    qtbot.addWidget(page)
    page.resize(1200, 700)
    page.show()
    dash = page.dashboard
    _feed(dash)
    vb = dash.panels["latency"].plot.getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    center = vb.mapViewToScene(QPointF((x0 + x1) / 2, (y0 + y1) / 2))
    view_pos = dash.view.mapFromScene(center)
    ev = QWheelEvent(QPointF(view_pos), QPointF(dash.view.mapToGlobal(view_pos)), QPoint(0, 0),
                     QPoint(0, 240), Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                     Qt.ScrollPhase.NoScrollPhase, False)
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(dash.view.viewport(), ev)
    (nx0, nx1), (ny0, ny1) = vb.viewRange()
    assert nx1 - nx0 < x1 - x0  # time zoomed in
    assert (ny0, ny1) == (y0, y1)  # values untouched
    assert not dash.following and dash.paused  # the view stays where the user put it
    assert "reset" in page.follow_button.text().lower()
    _feed(dash, 1.0, t0_ms=3000)
    assert vb.viewRange()[0] == [nx0, nx1]  # new data does not yank the view back
    page.follow()
    assert dash.following and not dash.paused
    _feed(dash, 0.5, t0_ms=4000)
    lo, hi = vb.viewRange()[0]
    assert abs((hi - lo) - 5.0) < 1e-6  # the rolling window again
    assert page.follow_button.text() == "Follow"


def test_rec_badge_shows_time_size_and_stops(qtbot, tmp_path) -> None:
    from app.gui.pages.live_page import LivePage

    page = LivePage(window_s=5)
    qtbot.addWidget(page)
    page.show()
    assert page.start_recording(str(tmp_path / "r.csv"))
    assert page.rec_badge.isVisible()
    _feed(page.dashboard, 0.5)
    qtbot.waitUntil(lambda: "B · " in page.rec_badge.text
                    and " 0 samples" not in page.rec_badge.text, timeout=3000)
    assert page.rec_badge.text.startswith("● REC 0:0")
    assert page.minimumSizeHint().width() <= 780  # fits 1024 px beside the device list
    page.rec_badge.stop.click()
    assert not page.rec_badge.isVisible() and page.dashboard.recorder is None


def test_replay_has_a_timeline_speed_and_an_end(qtbot, tmp_path) -> None:
    from app.gui.pages.live_page import LivePage
    from device_drivers.recording import TelemetryRecorder
    from device_drivers.telemetry import TelemetryBatch

    path = tmp_path / "rec.csv"
    t = 1.8e9 + np.arange(0, 2.0, 0.01)
    with TelemetryRecorder(path) as rec:
        rec.write(TelemetryBatch(channels={"latency_us": (t, np.full(len(t), 1000.0))}))
    page = LivePage(window_s=5)
    qtbot.addWidget(page)
    page.show()
    loader = page.start_replay(str(path), speed=20.0)
    qtbot.waitUntil(lambda: not loader.running and page.replay_bar.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: "finished" in page.replay_bar.state.text(), timeout=5000)
    assert page.replay_bar.slider.value() == 1000
    assert page.minimumSizeHint().width() <= 780  # fits 1024 px beside the device list
    assert len(page.dashboard.channel_data("latency_us")[0]) == len(t)
    page._replay_seek(1.0)  # jump back to the middle: plays again from there
    assert page.replaying
    qtbot.waitUntil(lambda: "finished" in page.replay_bar.state.text(), timeout=5000)
    assert len(page.dashboard.channel_data("latency_us")[0]) == len(t) // 2


def test_replay_disconnects_only_once_a_file_is_picked(qtbot, make_window, tmp_path,
                                                       monkeypatch) -> None:
    from device_drivers.recording import TelemetryRecorder
    from device_drivers.telemetry import TelemetryBatch

    path = tmp_path / "rec.csv"
    t = 1.8e9 + np.arange(0, 1.0, 0.01)
    with TelemetryRecorder(path) as rec:
        rec.write(TelemetryBatch(channels={"latency_us": (t, np.full(len(t), 1000.0))}))
    win = make_window(watch=False)
    calls: list[str] = []
    win.live.before_replay = lambda: calls.append("disconnect")
    monkeypatch.setattr(win.live, "pick_replay_file", lambda: "")  # the user cancels
    win.live.replay_button.click()
    assert calls == [] and not win.live.replay_bar.isVisible()
    monkeypatch.setattr(win.live, "pick_replay_file", lambda: str(path))
    win.live.replay_button.click()
    assert calls == ["disconnect"]
    qtbot.waitUntil(lambda: win.live.replay_bar.isVisible(), timeout=5000)
