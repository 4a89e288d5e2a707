"""Fleet → Live is a source switch that clears: a new device means a new, empty view titled
with it; an MQTT device offline or silent gets the outage view; watching a fleet device asks
before it drops the local board; the table browses without switching pages; a card loaded
on the Fleet page gives drift, shown in the table and beside the device on the Live page."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
from fleet_servers import Mosquitto, running_mosquitto

from device_drivers import paths

EXAMPLE = paths.resources_dir() / "examples" / "vibration"


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as server:
        yield server


@pytest.fixture
def client(broker: Mosquitto):  # type: ignore[no-untyped-def]
    import paho.mqtt.client as paho

    c = paho.Client(paho.CallbackAPIVersion.VERSION2)
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    yield c
    c.disconnect()
    c.loop_stop()


def _pub(client, fleet: str, dev: str, kind: str, payload: dict) -> None:  # type: ignore[no-untyped-def]
    client.publish(f"tinyops/{fleet}/{dev}/{kind}", json.dumps(payload),
                   qos=1).wait_for_publish(5)


def _fleet_window(qtbot, make_window, broker: Mosquitto, fleet: str):  # type: ignore[no-untyped-def]
    win = make_window(enumerate_fn=lambda: [], watch=False)
    page = win.fleet_page
    page.broker.setText(broker.url)
    page.fleet.setText(fleet)
    win.show_page("fleet")
    page.broker.setFocus()
    from PySide6.QtCore import Qt

    qtbot.keyClick(page.broker, Qt.Key.Key_Return)  # Enter connects
    qtbot.waitUntil(lambda: page.state.text().startswith("connected"), timeout=10000)
    return win, page


def _count(dash, name: str) -> int:  # type: ignore[no-untyped-def]
    try:
        return len(dash.channel_data(name)[0])
    except KeyError:
        return 0


def test_switching_fleet_devices_clears_the_view_and_silence_is_an_outage(
        qtbot, make_window, broker: Mosquitto, client) -> None:
    from PySide6.QtCore import Qt

    win, page = _fleet_window(qtbot, make_window, broker, "sw")
    for dev in ("a-01", "b-02"):
        _pub(client, "sw", dev, "status", {"state": "online"})
    qtbot.waitUntil(lambda: page.table.rowCount() == 2, timeout=10000)
    page.table.setFocus()
    page.table.selectRow(0)
    qtbot.keyClick(page.table, Qt.Key.Key_Down)  # browsing the table stays on the page
    assert win.current_page() == "fleet" and win.fleet_live.source is None
    page.table.selectRow(0)
    qtbot.keyClick(page.table, Qt.Key.Key_Return)  # Enter watches the chosen device
    first = win.fleet_live.source
    assert first is not None and win.current_page() == "live"
    qtbot.waitUntil(first.subscribed.is_set, timeout=10000)
    dev1 = first.device_id
    dash = win.live.dashboard
    for i in range(5):
        _pub(client, "sw", dev1, "telemetry", {"t": i * 100, "scores": {"x": 0.9, "y": 0.1},
                                               "latency_us": 100 + i})
    qtbot.waitUntil(lambda: _count(dash, "latency_us") == 5, timeout=10000)
    assert dash.live and not dash.outage.isVisible()

    dev2 = "b-02" if dev1 == "a-01" else "a-01"
    page.choose(dev2)  # another device: a new, empty view titled with it
    second = win.fleet_live.source
    assert second is not None and second.device_id == dev2
    assert _count(dash, "latency_us") == 0 and not dash.channels()
    assert dev2 in win.live.source_label.text() and dev1 not in win.live.source_label.text()
    qtbot.waitUntil(second.subscribed.is_set, timeout=10000)
    _pub(client, "sw", dev1, "telemetry", {"t": 9, "scores": {"x": 1.0}, "latency_us": 7})
    _pub(client, "sw", dev2, "telemetry", {"t": 1, "scores": {"x": 0.5, "y": 0.5},
                                           "latency_us": 50})
    qtbot.waitUntil(lambda: _count(dash, "latency_us") == 1, timeout=10000)  # dev2's only

    _pub(client, "sw", dev2, "status", {"state": "offline"})  # its will, or a clean exit
    qtbot.waitUntil(lambda: dash.outage.isVisible(), timeout=10000)
    assert not dash.live and "offline" in dash.outage.text
    _pub(client, "sw", dev2, "status", {"state": "online"})
    for i in range(3):
        _pub(client, "sw", dev2, "telemetry", {"t": 10 + i, "scores": {"x": 0.5, "y": 0.5},
                                               "latency_us": 51})
    qtbot.waitUntil(lambda: dash.live and not dash.outage.isVisible(), timeout=10000)
    qtbot.waitUntil(lambda: dash.outage.isVisible(), timeout=15000)  # then silence
    assert "silent" in dash.outage.reason and "stopped answering" in dash.outage.text


def test_watching_a_fleet_device_asks_before_dropping_the_local_board(
        qtbot, make_window, broker: Mosquitto, client, virtual_board) -> None:
    win, page = _fleet_window(qtbot, make_window, broker, "ask")
    win.connect_port(virtual_board.port)
    qtbot.waitUntil(lambda: win.link.state == "connected", timeout=15000)
    _pub(client, "ask", "c-03", "status", {"state": "online"})
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=10000)
    asked: list[str] = []
    win.ask = lambda title, text: asked.append(text) or False  # type: ignore[method-assign]
    page.choose("c-03")
    assert asked and virtual_board.port in asked[0]
    assert win.link.state == "connected" and win.fleet_live.source is None  # kept
    win.ask = lambda title, text: True  # type: ignore[method-assign]
    page.choose("c-03")
    assert win.fleet_live.source is not None and win.link.port is None


def test_a_card_loaded_on_the_fleet_page_gives_drift_in_the_table_and_live(
        qtbot, make_window, broker: Mosquitto, client, tmp_path) -> None:
    card = json.loads((EXAMPLE / "model_int8.tflite.card.json").read_text())
    card["sha256"] = hashlib.sha256(b"another model").hexdigest()  # not the example's
    path = tmp_path / "other.tflite.card.json"
    path.write_text(json.dumps(card))
    win, page = _fleet_window(qtbot, make_window, broker, "drift")
    page.set_cards([str(path)])
    qtbot.waitUntil(lambda: page.state.text().startswith("connected"), timeout=10000)
    _pub(client, "drift", "d-04", "status", {"state": "online",
                                             "model_sha256": card["sha256"]})
    qtbot.waitUntil(lambda: page.table.rowCount() == 1, timeout=10000)
    page.choose("d-04")
    qtbot.waitUntil(lambda: win.fleet_live.source is not None
                    and win.fleet_live.source.subscribed.is_set(), timeout=10000)
    for i in range(80):  # a machine failing: bearing faults only
        _pub(client, "drift", "d-04", "telemetry",
             {"t": i * 50, "scores": {"normal": 0.0, "imbalance": 0.02,
                                      "bearing_fault": 0.98}, "latency_us": 100})
    qtbot.waitUntil(lambda: page.table.item(0, 6) is not None
                    and page.table.item(0, 6).text().startswith("drift"), timeout=15000)
    assert float(page.table.item(0, 5).text()) > 0.25
    qtbot.waitUntil(lambda: "DRIFT ALERT" in win.live.source_label.text(), timeout=5000)
