"""The Fleet page against a real Mosquitto: devices in the table, the chosen one's plot,
the aggregator off the GUI thread, the records-server setting and the pending note."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
from fleet_servers import Mosquitto, running_mosquitto

from app.gui.pages.fleet_page import FleetPage


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with running_mosquitto() as server:
        yield server


class Ctx:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def report_error(self, err: object) -> None:
        self.errors.append(err)


@pytest.fixture
def page(qtbot) -> Iterator[FleetPage]:
    from PySide6.QtWidgets import QStatusBar

    bar = QStatusBar()
    p = FleetPage(Ctx(), bar)
    yield p
    p.shutdown()
    for w in (p, bar):  # pyqtgraph's menus go with their widget
        w.close()
        w.deleteLater()


def _publisher(broker: Mosquitto):  # type: ignore[no-untyped-def]
    import paho.mqtt.client as paho

    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    return client


def test_fleet_page_lists_devices_and_plots_the_chosen_one(qtbot, page: FleetPage,
                                                           broker: Mosquitto) -> None:
    page.broker.setText(broker.url)
    page.fleet.setText("gui")
    page.toggle()
    qtbot.waitUntil(lambda: page.state.text().startswith("connected"), timeout=10000)
    worker = page.worker
    assert worker is not None and worker.thread_ident not in (None, threading.get_ident())
    client = _publisher(broker)
    try:
        for dev in ("press-01", "press-02"):
            client.publish(f"tinyops/gui/{dev}/status", json.dumps(
                {"state": "online", "model_sha256": "ab12" * 16, "board": "virtual"}),
                qos=1, retain=False).wait_for_publish(5)
        for i in range(5):
            client.publish("tinyops/gui/press-01/telemetry", json.dumps(
                {"t": i * 100, "scores": {"a": 0.9, "b": 0.1}, "latency_us": 1500}),
                qos=1).wait_for_publish(5)
        qtbot.waitUntil(lambda: page.table.rowCount() == 2 and
                        page.rows.get("press-01", {}).get("messages") == 5, timeout=10000)
        cells = [page.table.item(0, c).text() for c in range(page.table.columnCount())]
        assert cells[:3] == ["press-01", "online", "ab12ab12ab12"] and cells[4] == "5"
        assert cells[3] != "—" and page.table.item(1, 4).text() == "0"
        page.table.selectRow(0)
        assert page.device_plot.device == "press-01" and worker.device == "press-01"
        for i in range(4):
            client.publish("tinyops/gui/press-01/telemetry", json.dumps(
                {"t": 600 + i * 100, "scores": {"a": 0.7, "b": 0.3}, "latency_us": 2000}),
                qos=1).wait_for_publish(5)
        client.publish("tinyops/gui/press-01/telemetry", json.dumps(
            {"t": 1100, "summary": {"counts": {"a": 6, "b": 2}, "n": 8,
                                    "latency_us_p50": 1900}}), qos=1).wait_for_publish(5)
        qtbot.waitUntil(lambda: len(page.device_plot.points) == 5, timeout=10000)
        xs, ys = page.device_plot.top.getData()
        assert list(ys) == pytest.approx([0.7] * 4 + [0.75])  # summary: top class's share
        assert all(x <= 0 for x in xs)
        _, lat = page.device_plot.latency.getData()
        assert list(lat) == pytest.approx([2.0] * 4 + [1.9])
        qtbot.waitUntil(lambda: page.rows["press-01"]["messages"] == 10, timeout=10000)
    finally:
        client.disconnect()
        client.loop_stop()
    page.toggle()
    assert page.worker is None and page.connect_button.text() == "Connect"
    assert not worker._thread.is_alive()


def test_unreachable_broker_is_one_line(qtbot, page: FleetPage) -> None:
    from fleet_servers import free_port

    page.broker.setText(f"mqtt://127.0.0.1:{free_port()}")
    page.toggle()
    qtbot.waitUntil(lambda: page.worker is None, timeout=10000)
    assert page.state.text().startswith("cannot reach the MQTT broker")
    assert [e.message for e in page.ctx.errors] == [page.state.text()]
    assert "\n" not in page.state.text() and page.ctx.errors[0].hint  # what to do, too
    page.broker.setText("http://nope")
    page.toggle()
    qtbot.waitUntil(lambda: page.worker is None, timeout=10000)
    assert page.state.text().startswith("bad MQTT URL")


def test_records_url_setting_and_pending_note(qtbot, page: FleetPage) -> None:
    from fleet_ops.records import records_url
    from fleet_ops.records.outbox import Outbox

    page.records_url.setText("  postgresql://tinyops@db.example:5432/records ")
    assert page.save_records_url() and records_url() == \
        "postgresql://tinyops@db.example:5432/records"
    page.records_url.setText("mysql://x")
    assert not page.save_records_url() and "unsupported records URL" in page.ctx.errors[-1]
    assert records_url() == "postgresql://tinyops@db.example:5432/records"
    page.records_url.setText("")
    assert page.save_records_url() and records_url() == ""
    outbox = Outbox()
    for i in range(3):
        outbox.put(f"uid-{i}", {"operation": "flash", "result": "ok", "details": "{}"})
    page.pending.refresh()
    qtbot.waitUntil(lambda: page.pending.count == 3, timeout=10000)
    assert page.pending.label.text() == "3 records waiting for the server"
    assert not page.pending.label.isHidden()


def test_main_window_has_the_fleet_page(make_window) -> None:
    win = make_window(show=False, start=False)
    index = win.tabs.indexOf(win.fleet_page)
    assert index >= 0 and win.tabs.tabText(index) == "Fleet"
    win.show_page("fleet")
    assert win.tabs.currentWidget() is win.fleet_page


def test_a_broker_that_goes_away_is_shown_with_since_when_and_its_return(
        qtbot, page: FleetPage) -> None:
    with running_mosquitto() as own:
        page.broker.setText(own.url)
        page.fleet.setText("outage")
        page.toggle()
        qtbot.waitUntil(lambda: page.state.text() == f"connected to {own.url}", timeout=15000)
        own.kill()
        qtbot.waitUntil(lambda: page.state.text().startswith("broker unreachable since "),
                        timeout=15000)
        assert "shown as unknown" in page.state.toolTip() and own.url in page.state.toolTip()
        assert "b00020" in page.state.styleSheet()
        own.start()  # same port
        qtbot.waitUntil(lambda: page.state.text().startswith(f"connected to {own.url}"),
                        timeout=20000)
        assert "1 reconnection(s)" in page.state.text() and page.state.styleSheet() == ""
        assert page.state.toolTip() == ""
