"""Choosing a Fleet device opens the Live dashboard fed from MQTT (real Mosquitto), through
the same parser/batch/store path as a serial board; switching or closing stops the client."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
from fleet_servers import Mosquitto, running_mosquitto


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as server:
        yield server


def _publish(client, dev: str, kind: str, payload: dict) -> None:  # type: ignore[no-untyped-def]
    client.publish(f"tinyops/live/{dev}/{kind}", json.dumps(payload),
                   qos=1).wait_for_publish(5)


def test_choosing_a_fleet_device_feeds_the_live_dashboard(qtbot, make_window,
                                                         broker: Mosquitto) -> None:
    import paho.mqtt.client as paho

    win = make_window(enumerate_fn=lambda: [], watch=False)
    page = win.fleet_page
    win.show_page("fleet")
    page.broker.setText(broker.url)
    page.fleet.setText("live")
    page.toggle()
    qtbot.waitUntil(lambda: page.state.text().startswith("connected"), timeout=10000)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    try:
        _publish(client, "press-07", "status", {"state": "online", "board": "virtual"})
        qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=10000)
        page.table.selectRow(0)  # choosing a row keeps the page (arrow keys browse)
        assert win.current_page() == "fleet" and win.fleet_live.source is None
        page.watch()  # Enter / double-click / "Watch live"
        source = win.fleet_live.source
        assert source is not None and win.live.store.source is source
        assert win.current_page() == "live"
        assert win.live.source_label.text() == "fleet: press-07 via MQTT"
        qtbot.waitUntil(source.subscribed.is_set, timeout=10000)
        for i in range(6):
            _publish(client, "press-07", "telemetry",
                     {"t": 1000 + i * 100, "scores": {"ok": 0.2, "fault": 0.8},
                      "latency_us": 1500 + i})
        _publish(client, "press-08", "telemetry",  # another device: not shown
                 {"t": 5, "scores": {"ok": 1.0}, "latency_us": 9})
        dash = win.live.dashboard

        def count(name: str) -> int:
            try:
                return len(dash.channel_data(name)[0])
            except KeyError:  # not shown yet
                return 0

        qtbot.waitUntil(lambda: count("latency_us") == 6 and count("score/fault") == 6,
                        timeout=10000)
        assert list(dash.channel_data("latency_us")[1]) == pytest.approx(  # shown in ms
            [1.5 + i / 1000 for i in range(6)])
        assert list(dash.channel_data("score/fault")[1]) == pytest.approx([0.8] * 6)
        assert source.messages == 6  # press-08 never reached this source
        assert source.feed_threads and threading.get_ident() not in source.feed_threads

        win.connect_port("/dev/tinyops-no-such-port")  # back to a serial board
        assert win.fleet_live.source is None and win.live.store.source is not source
        qtbot.waitUntil(lambda: not source.running, timeout=10000)

        asked: list[str] = []
        win.ask = lambda title, text: asked.append(title) or True  # the dialog's "Yes"
        page.choose("press-08")  # again (asks first: a serial port is chosen), then close
        assert asked == ["Watch press-08 live?"]
        second = win.fleet_live.source
        assert second is not None and second.device_id == "press-08"
        qtbot.waitUntil(second.subscribed.is_set, timeout=10000)
        win.close()
        assert win.fleet_live.source is None
        qtbot.waitUntil(lambda: not second.running, timeout=10000)
    finally:
        client.disconnect()
        client.loop_stop()
