"""Item 1: an outage is shown as one (grey, plain words, stale header), the link returns to
the board by itself, and the time axis stays on wall time across the reconnect."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest

from app.gui.connection import DeviceLink
from app.gui.live.dashboard import LiveDashboard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def tcp_board(tmp_path):
    from device_drivers.virtual.board import VirtualBoard

    vb = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb", tcp_port=_free_port())
    vb.start()
    yield vb
    vb.stop()


def test_outage_greys_out_then_the_board_returns_on_its_own(qtbot, tcp_board) -> None:
    dash = LiveDashboard(window_s=1.0)  # a full window from the start: right edge = newest
    qtbot.addWidget(dash)
    dash.resize(1024, 600)
    dash.show()
    link = DeviceLink(dash.store)
    link.connect_port(tcp_board.port)
    qtbot.waitUntil(lambda: "latency_us" in dash.channels(), timeout=15000)
    assert dash.live and not dash.outage.isVisible()

    tcp_board.stop()  # the board goes away
    qtbot.waitUntil(lambda: not dash.live, timeout=5000)
    assert link.outage is not None and link.state in ("lost", "connecting")  # retrying
    assert dash.outage.isVisible()
    assert "Reconnecting" in dash.outage.text and "No live data" in dash.outage.text
    assert "errno" not in dash.outage.text.lower()
    assert "not live" in dash.header.caption.text()  # the big label says it is stale
    assert "#8a8a8a" in dash.header.tiles[0].value.styleSheet()  # tiles greyed
    assert dash.status_text().startswith("NO LIVE DATA")  # no stale samples/s figure
    t_before = dash.channel_data("latency_us")[0][-1]
    away_s = 1.5
    qtbot.wait(int(away_s * 1000))  # the outage lasts a while (wall time goes on)
    vb = dash.panels["latency"].plot.getViewBox()
    # the greyed plots keep to wall time meanwhile: the right edge is "now", not the last sample
    qtbot.waitUntil(lambda: abs(dash.feed.t0 + vb.viewRange()[0][1] - time.time()) < 0.6,
                    timeout=2000)

    tcp_board.start()  # the same board, same port
    back = time.monotonic()
    qtbot.waitUntil(lambda: link.state == "connected", timeout=5000)
    assert time.monotonic() - back < 2.0, "must switch back within 2 s"
    n = len(dash.channel_data("latency_us")[0])
    qtbot.waitUntil(lambda: len(dash.channel_data("latency_us")[0]) > n + 3, timeout=5000)
    assert dash.live and not dash.outage.isVisible()
    t, v = dash.channel_data("latency_us")
    # the axis is wall time: the first sample after the outage sits at least the outage later
    after = t[(t > t_before) & np.isfinite(v)]
    assert after[0] - t_before >= away_s
    assert np.isnan(v).any()  # the gap is a break in the line, not a join
    assert np.all(np.diff(t) >= 0)
    # and the newest sample is at "now" on the axis (no drift from wall time)
    assert abs((dash.feed.t0 + t[-1]) - time.time()) < 1.0
    link.shutdown()


def test_the_kiosk_returns_to_a_board_restarted_on_the_same_port(qtbot, make_window,
                                                                  tcp_board) -> None:
    win = make_window(watch=False, kiosk=True, port=tcp_board.port)
    dash = win.live.dashboard
    qtbot.waitUntil(lambda: win.link.state == "connected" and "latency_us" in dash.channels(),
                    timeout=15000)
    tcp_board.stop()
    qtbot.waitUntil(lambda: not dash.live, timeout=5000)
    assert dash.outage.isVisible()
    tcp_board.start()
    back = time.monotonic()
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=5000)
    assert time.monotonic() - back < 2.0
    qtbot.waitUntil(lambda: dash.live and not dash.outage.isVisible(), timeout=5000)
    assert win.link.port == tcp_board.port


def test_a_lost_board_is_followed_to_a_new_port_by_its_usb_serial(qtbot, tmp_path) -> None:
    from app.gui.devices import DeviceEntry
    from app.state.live_store import ChannelStore

    link = DeviceLink(ChannelStore())
    entries = {"/dev/ttyACM0": DeviceEntry(port="/dev/ttyACM0", name="b", serial="E66138")}
    link.lookup = entries.get
    link.connect_port("/dev/ttyACM0")
    assert link.serial == "E66138"
    link._on_lost("device reports readiness to read but returned no data")  # unplugged
    assert link.outage is not None and link.store.outage is not None
    link.board_added(DeviceEntry(port="/dev/ttyACM1", name="other", serial="XYZ"))
    assert link.port == "/dev/ttyACM0"  # another board: not followed
    link.board_added(DeviceEntry(port="/dev/ttyACM1", name="b", serial="E66138"))
    assert link.port == "/dev/ttyACM1" and link.state == "connecting"
    link.disconnect_port()
    assert link.outage is None and link.store.outage is None
    assert link.shutdown(3000)
