"""A fleet device's MQTT telemetry as a live-view source (what ``ChannelStore.attach`` takes).

The device publishes the same JSON lines a serial board prints
(``resources/protocol/fleet_mqtt.md``), so each payload goes, as one line, into a
``TelemetryParser`` like a session's text; ``telemetry()`` drains it into the one
``TelemetryBatch`` type. Connecting (which may block for seconds) runs on a short-lived
thread, then paho's own network thread feeds the parser: never the GUI thread.
:class:`FleetLive` is the window's glue (Qt only through the live page it is given).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # numpy comes with telemetry: imported on use, not when the window opens
    from app.gui.pages.live_page import LivePage
    from device_drivers.telemetry import TelemetryBatch

log = logging.getLogger(__name__)

SILENT_S = 3.0  # a device that published nothing for this long (or 5 of its periods) is away


class MqttSource:
    """One device's ``tinyops/<fleet>/<device>/telemetry`` messages, parsed as JSON lines."""

    def __init__(self, url: str, fleet: str, device_id: str) -> None:
        from device_drivers.telemetry.parser import TelemetryParser
        from fleet_ops.fleet.mqtt import check_name, topic

        self.url, self.fleet = url, check_name(fleet, "fleet name")
        self.device_id = check_name(device_id)
        self.topic = topic(self.fleet, self.device_id, "telemetry")
        self.status_topic = topic(self.fleet, self.device_id, "status")
        self.name = f"fleet: {device_id} via MQTT"
        self.offline = False  # its status (or the broker's will for it) says offline
        self.last_message: float | None = None
        self._period = 0.0  # smoothed time between messages
        self._opened = time.time()
        self.error: str | None = None
        self.messages = 0
        self.subscribed = threading.Event()
        self.feed_threads: set[int] = set()  # where payloads were parsed (tests check it)
        self._parser = TelemetryParser("json")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._client: Any = None
        from device_drivers.telemetry.message import MAX_BYTES

        self._max_bytes = MAX_BYTES
        self._thread = threading.Thread(target=self._connect, name="fleet-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _connect(self) -> None:
        from fleet_ops.fleet.mqtt import connect
        from tinyops_base.errors import TinyOpsError

        try:  # subscribed again on every reconnection (issue 19)
            client = connect(self.url, subscriptions=[(self.topic, 0), (self.status_topic, 1)],
                             on_message=self._message,
                             on_subscribe=lambda *_a: self.subscribed.set())
        except TinyOpsError as exc:
            self.error = exc.message
            return
        with self._lock:
            if self._stop.is_set():  # stopped while connecting
                client.loop_stop()
                client.disconnect()
                return
            self._client = client

    def _message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        """On paho's network thread: parse here, as a session parses on its I/O thread."""
        self.feed_threads.add(threading.get_ident())
        now = time.time()
        if msg.topic == self.status_topic:
            self._status(bytes(msg.payload))
            return
        if len(msg.payload) > self._max_bytes:  # the fleet decoder's limit: not telemetry
            return
        with self._lock:
            self.messages += 1
            if self.last_message is not None:
                gap = now - self.last_message
                self._period = gap if not self._period else 0.8 * self._period + 0.2 * gap
            self.last_message = now
            self._parser.feed(bytes(msg.payload).rstrip(b"\r\n") + b"\n", now)

    def _status(self, payload: bytes) -> None:
        import json

        try:
            state = json.loads(payload).get("state")
        except (ValueError, AttributeError):
            return
        self.offline = state == "offline"

    @property
    def outage(self) -> str | None:
        """Why the device shows no live data (offline, silent), or None: the live view
        shows it as it shows a serial board's outage."""
        if self.error:
            return self.error
        if self.offline:
            return f"{self.device_id} is offline (its fleet status says so)"
        now = time.time()
        last = self.last_message
        limit = max(SILENT_S, 5 * self._period)
        if last is None:
            return (f"{self.device_id} has sent nothing since it was chosen"
                    if now - self._opened > limit else None)
        if now - last > limit:
            return f"{self.device_id} is silent: no message for {now - last:.0f} s"
        return None

    def telemetry(self) -> TelemetryBatch:
        with self._lock:
            return self._parser.drain()

    @property
    def running(self) -> bool:
        return self._client is not None or self._thread.is_alive()

    def stop(self) -> None:
        """Disconnect and end paho's thread. Never waits for a connect still under way:
        that thread sees the stop and disconnects on its own."""
        self._stop.set()
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.disconnect()
            client.loop_stop()


class FleetLive:
    """Shows a fleet device on the Live page; ``close`` detaches and stops it."""

    def __init__(self, live: LivePage) -> None:
        self.live = live
        self.source: MqttSource | None = None

    def open(self, url: str, fleet: str, device_id: str) -> MqttSource:
        self.close()
        self.live.stop_replay()
        self.live.reset_view()  # a new device: a new, empty view titled with it
        source = self.source = MqttSource(url, fleet, device_id)
        source.start()
        self.live.store.attach(source)
        self.live.set_source(source.name)
        return source

    def show_drift(self, summary: dict[str, Any]) -> None:
        """The watched device's drift from the fleet summary, beside its name."""
        source = self.source
        if source is None:
            return
        row = next((d for d in summary.get("devices", [])
                    if d.get("device_id") == source.device_id), None)
        score = row.get("drift_score") if row else None
        if score is None:
            self.live.set_source(source.name)
            return
        alert = bool(row.get("alerts")) if row else False
        self.live.set_source(f"{source.name} · drift {score:.2f}"
                             + (" · DRIFT ALERT" if alert else ""), alert=alert)

    def close(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            self.live.store.detach(source)
            source.stop()
            self.live.set_source("")
            self.live.reset_view()  # its trace is not the next source's
