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
    dash = LiveDashboard()
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
    assert abs((dash._t0 + t[-1]) - time.time()) < 1.0
    link.shutdown()
