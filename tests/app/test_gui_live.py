"""The Live page against a real virtual board: telemetry arrives, curves hold it, and the
controls (pause, cursor, record/replay, export) do what they say."""

from __future__ import annotations

import csv
import json
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtGui import QImage

from device_drivers import paths
from device_drivers.telemetry import TelemetryParser

EXAMPLE = paths.resources_dir() / "examples" / "vibration"
LABELS = [s for s in (EXAMPLE / "labels.txt").read_text().split() if s]


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    from device_drivers.virtual.board import VirtualBoard

    vb = VirtualBoard(board="nano33ble", state_dir=tmp_path_factory.mktemp("vb"))
    vb.start()
    yield vb
    vb.stop()


def _wait_for_scores(qtbot, dash, n: int = 5, timeout: int = 15000) -> None:
    def enough() -> bool:
        names = dash.channels()
        return all(f"score/{label}" in names for label in LABELS) and min(
            len(dash.channel_data(f"score/{label}")[0]) for label in LABELS) >= n
    qtbot.waitUntil(enough, timeout=timeout)


def test_live_page_plots_the_virtual_boards_inference(qtbot, make_window, board) -> None:
    win = make_window(watch=False, port=board.port)
    dash = win.live.dashboard
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=10000)
    assert win.link.info.runtime and win.link.info.model_loaded
    assert win.link.info.labels == LABELS  # the model the board runs is the bundled example
    _wait_for_scores(qtbot, dash, n=5)
    qtbot.waitUntil(lambda: "latency_us" in dash.channels(), timeout=5000)
    for label in LABELS:
        t, v = dash.channel_data(f"score/{label}")
        assert np.all(np.diff(t) > 0), "time must increase"
        assert np.all((v >= 0) & (v <= 1)), "scores are probabilities"
        assert dash.curve_points(f"score/{label}") > 0  # the curve item holds data
    stacked = np.stack([dash.channel_data(f"score/{lb}")[1][:5] for lb in LABELS])
    np.testing.assert_allclose(stacked.sum(axis=0), 1.0, atol=0.05)  # softmax outputs
    _, latency_ms = dash.channel_data("latency_us")
    assert np.all(latency_ms > 0) and np.all(latency_ms < 1000)  # shown in ms
    label_text = dash.header.label.text()
    assert label_text in {lb.replace("_", " ").upper() for lb in LABELS}
    assert {"memory", "cpu", "temp", "supply"} <= set(dash.panels)
    assert dash.panels["latency"].plot.getAxis("left").labelText == "ms"
    # the console gets the raw lines, batched
    qtbot.waitUntil(lambda: any('"scores"' in s for _, s in win.console.lines), timeout=5000)
    win.show_page("console")  # the widget is filled when the page shows
    qtbot.waitUntil(lambda: '"scores"' in win.console.text.toPlainText(), timeout=5000)
    assert win.devices.connected_port == board.port or win.status.link_state == "connected"


def test_pause_freezes_the_curves_while_data_keeps_coming(qtbot, make_window, board) -> None:
    win = make_window(watch=False, port=board.port)
    dash = win.live.dashboard
    _wait_for_scores(qtbot, dash, n=3)
    name = f"score/{LABELS[0]}"
    win.live.pause_button.setChecked(True)
    frozen = np.array(dash.panels["scores"].curves[name].item.getData()[0])
    total = len(dash.channel_data(name)[0])
    qtbot.waitUntil(lambda: len(dash.channel_data(name)[0]) >= total + 3, timeout=5000)
    np.testing.assert_array_equal(dash.panels["scores"].curves[name].item.getData()[0], frozen)
    text = dash.show_cursor(float(frozen[-1]))  # cursor readout at the last frozen sample
    assert text.startswith("t = ")
    for label in LABELS:
        assert label in text
    win.live.pause_button.setChecked(False)
    qtbot.waitUntil(
        lambda: len(dash.panels["scores"].curves[name].item.getData()[0]) > len(frozen),
        timeout=5000)


def test_record_then_replay_reproduces_the_samples(qtbot, make_window, board,
                                                   tmp_path: Path) -> None:
    win = make_window(watch=False, port=board.port)
    dash = win.live.dashboard
    _wait_for_scores(qtbot, dash, n=2)
    out = tmp_path / "rec.csv"
    assert win.live.start_recording(str(out))
    assert win.live.record_button.isChecked()
    qtbot.wait(1500)
    rows = dash.stop_recording()
    assert rows > 0 and not win.live.record_button.isChecked()
    with out.open() as fh:
        recorded = list(csv.reader(fh))
    assert recorded[0] == ["t", "channel", "value", "wall_time"]
    assert len(recorded) - 1 == rows
    # wall-clock time: the device's clock mapped to host time, and readable
    t_last = float(recorded[-1][0])
    assert abs(t_last - time.time()) < 10
    assert datetime.fromisoformat(recorded[-1][3]).timestamp() == pytest.approx(t_last, abs=1e-3)
    lat = np.array([float(r[2]) for r in recorded[1:] if r[1] == "latency_us"])
    assert len(lat) >= 3
    # replay it (disconnected) and compare what the dashboard then holds
    win.disconnect()
    job = win.live.start_replay(str(out), speed=20.0)
    qtbot.waitUntil(lambda: not job.running, timeout=10000)  # the file is read off the GUI thread
    qtbot.waitUntil(lambda: "latency_us" in dash.channels() and len(
        dash.channel_data("latency_us")[0]) == len(lat), timeout=5000)
    np.testing.assert_allclose(dash.channel_data("latency_us")[1], lat / 1000.0, rtol=1e-6)


def test_export_png_writes_the_dashboard(qtbot, make_window, board, tmp_path: Path) -> None:
    win = make_window(watch=False, port=board.port)
    _wait_for_scores(qtbot, win.live.dashboard, n=2)
    out = tmp_path / "live.png"
    size = win.live.dashboard.size()
    assert win.live.export_png(str(out))
    img = QImage(str(out))
    assert not img.isNull()
    assert (img.width(), img.height()) == (size.width(), size.height())
    assert str(out) in win.message.message  # says where it went


def test_text_only_boards_plot_through_the_same_path(qtbot) -> None:
    """Arduino plotter and Edge Impulse output (parsed by the core) land in the right panels."""
    from app.gui.live.dashboard import LiveDashboard

    dash = LiveDashboard()
    qtbot.addWidget(dash)
    parser = TelemetryParser()
    text = "booting...\n" + "".join(f"accX:{i * 0.1:.2f},accY:{-i * 0.1:.2f}\n"
                                    for i in range(50))
    parser.feed(text.encode(), 100.0)
    dash.store.push(parser.drain())
    dash.tick()
    assert set(dash.channels()) == {"accX", "accY"}
    assert set(dash.panels) == {"signals"}
    t, v = dash.channel_data("accY")
    assert len(t) >= 45 and v[-1] == pytest.approx(-4.9, abs=1e-5)
    dash.shutdown()


def test_garbage_and_huge_batches_stay_bounded(qtbot) -> None:
    from app.gui.live.dashboard import LiveDashboard

    dash = LiveDashboard()
    qtbot.addWidget(dash)
    parser = TelemetryParser(fmt="json")
    rng = np.random.default_rng(1)

    def feed(start: int) -> None:
        lines = []
        for i in range(start, start + 5000):  # t in ms: a 1 kHz stream
            lines.append(json.dumps({"t": i, "scores": {"a": 0.2, "b": 0.8},
                                     "latency_us": 900}))
            if i % 100 == 0:
                lines.append(rng.bytes(40).hex())  # noise between the lines
        # received (host time) as the chunk's last line was sent: no transfer delay
        parser.feed(("\n".join(lines) + "\n").encode(), (start + 4999) / 1000)
        dash.store.push(parser.drain())
        dash.tick()

    dash.set_window(10)
    feed(0)
    assert len(dash.channel_data("score/a")[0]) == 5000  # 5 s < the 10 s window: all kept
    for k in range(1, 12):  # 55 s more at 1 kHz: the rings hold the window, not the history
        feed(k * 5000)
    t, _ = dash.channel_data("score/a")
    assert t[-1] == pytest.approx(59.999)
    assert 10.0 <= t[-1] - t[0] < 20.0
    assert len(t) <= 16384
    assert dash.memory_bytes() <= 3 * 16384 * 12 * 2  # 3 channels, t+v, 2x slack
    dash.shutdown()


def test_dashboard_follows_a_dark_switch(qtbot) -> None:
    from app.gui import theme
    from app.gui.live.dashboard import LiveDashboard

    dash = LiveDashboard(dark=False)
    qtbot.addWidget(dash)
    parser = TelemetryParser()
    parser.feed(b"x\n" + b"".join(b"a:%d,b:%d\n" % (i, -i) for i in range(20)), 1.0)
    dash.store.push(parser.drain())
    dash.tick()
    panel = dash.panels["signals"]
    dash.set_dark(True)
    bg = dash.view.backgroundBrush().color().name().lower()
    assert bg == theme.plot_background(True).lower()
    pen = panel.plot.getAxis("left").pen().color().name().lower()
    assert pen == theme.grid_color(True).lower()
    assert theme.plot_foreground(True).lower() in panel.plot.titleLabel.text.lower()
    dash.shutdown()


def test_autoscale_keeps_data_in_view_with_a_steady_axis(qtbot) -> None:
    from app.gui.live.dashboard import LiveDashboard

    dash = LiveDashboard()
    qtbot.addWidget(dash)
    parser = TelemetryParser()
    k = [0]

    def push(center: float, n: int = 50) -> tuple[float, float]:
        lines = [f"sig:{center + 2 * np.sin(i / 3):.3f}" for i in range(n)]
        parser.feed(("\n".join(lines) + "\n").encode(), 10.0 + k[0])
        k[0] += 1
        dash.store.push(parser.drain())
        dash.tick()
        return tuple(dash.panels["signals"].plot.getViewBox().viewRange()[1])

    parser.feed(b"boot\n", 0.0)
    first = push(10.0)
    for _ in range(5):
        assert push(10.0) == first  # same data: the axis does not move
    _, v = dash.channel_data("sig")
    assert first[0] <= v.min() and v.max() <= first[1]
    lo, hi = push(100.0)  # the data leaves the range: it follows
    _, v = dash.channel_data("sig")
    assert lo <= v.min() and v.max() <= hi
    dash.set_autoscale(False)
    assert push(1000.0) == (lo, hi)  # autoscale off: the user's range stays
    dash.shutdown()
