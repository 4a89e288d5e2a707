"""Publishing one device's telemetry: the virtual board (``tinyops sim --mqtt``) and the
USB bridge (``tinyops bridge``) both use :class:`FleetPublisher`.

Telemetry (raw and summaries) goes at **QoS 1**: while the broker is away the messages wait
in the publisher (at most :data:`MAX_QUEUED` of them; beyond that the newest are dropped and
counted in ``dropped``) and are sent, in order, :data:`RESUME_DELAY_S` after it is back: a
restarted broker has forgotten every subscription, and what it gets before the fleet views
have subscribed again (they retry every second at most) goes to nobody. The retained status
is published again at once on every reconnection (a restarted broker may have lost it).
A publisher started while its broker is down keeps trying (bounded backoff,
``mqtt.RECONNECT_MAX_S``) instead of failing: ``wait=True`` asks for the old behaviour."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

from fleet_ops.fleet import mqtt

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0
TELEMETRY_QOS = 1
RESUME_DELAY_S = 2.0
MAX_QUEUED = 10_000
"""Messages kept while the broker is unreachable: 1 000 s of a raw board at 10 per second."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class FleetPublisher:
    """Connected to the broker until :meth:`close`; the last will marks the device offline."""

    def __init__(self, url: str, device_id: str, *, fleet: str = mqtt.DEFAULT_FLEET,
                 board: str | None = None, firmware: str | None = None,
                 model_sha256: str | None = None, wait: bool = False,
                 qos: int = TELEMETRY_QOS, handler: Any = None,
                 extra: dict[str, Any] | None = None) -> None:
        """``handler``: a device-side protocol (``fleet_ops.rollout.agent.UpdateAgent``) that
        shares this connection: its ``subscriptions()`` are subscribed on every connection,
        it gets their messages (``handle(topic, payload)``) and hears of every
        (re)connection (``connected()``). ``extra``: more status fields (the update
        protocol's ``previous_sha256``, ``ops``, ``arena_max``, ``model_max``, ``update``)."""
        self.fleet = mqtt.check_name(fleet, "fleet name")
        self.device_id = mqtt.check_name(device_id)
        self.info: dict[str, Any] = {"device_id": device_id, "board": board,
                                     "firmware": firmware, "model_sha256": model_sha256,
                                     **(extra or {})}
        self.handler = handler
        self.muted = False  # a test knob (sim --after-update silent): nothing is published
        self.telemetry_topic = mqtt.topic(self.fleet, device_id, "telemetry")
        self.status_topic = mqtt.topic(self.fleet, device_id, "status")
        will = json.dumps({**self.info, "state": "offline"}).encode()
        self.qos = qos
        self.published = 0
        self.dropped = 0
        self._last: Any = None
        self._backlog: deque[bytes] = deque()
        self._resuming = False
        self._status_at = 0.0
        self._lock = threading.Lock()
        self.client = mqtt.connect(url, client_id=f"tinyops-{self.fleet}-{device_id}",
                                   will=(self.status_topic, will), wait=wait,
                                   on_connected=self._connected, max_queued=MAX_QUEUED,
                                   subscriptions=handler.subscriptions() if handler else None,
                                   on_message=self._message if handler else None)
        self.link: mqtt.Link = self.client.link
        if not self.link.wait(True, 2.0):
            log.warning("MQTT broker %s not reachable yet (%s); retrying in the background",
                        self.client.broker, self.link.reason)

    def _connected(self, client: Any) -> None:
        """On every (re)connection: the retained status again (a restarted broker lost it)."""
        self.status(client=client)
        if self.handler is not None:
            self.handler.connected()
        with self._lock:
            if self._backlog and not self._resuming:
                log.info("MQTT broker back: %d telemetry messages go in %.0f s",
                         len(self._backlog), RESUME_DELAY_S)
                self._resuming = True
                timer = threading.Timer(RESUME_DELAY_S, self._flush, (client,))
                timer.daemon = True
                timer.start()

    def _message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        try:
            self.handler.handle(msg.topic, msg.payload)
        except Exception:  # one bad message never stops the network thread
            log.exception("handling %s failed", msg.topic)

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> Any:
        """Publish on this device's connection (the handler's messages)."""
        client = getattr(self, "client", None)
        if client is None:  # still connecting (the first connection's callback)
            raise RuntimeError("not connected yet")
        return client.publish(topic, payload, qos=qos, retain=retain)

    def _flush(self, client: Any = None) -> None:
        """Send what waited, oldest first (new messages wait behind it meanwhile)."""
        with self._lock:
            while self._backlog:
                self._last = (client or self.client).publish(
                    self.telemetry_topic, self._backlog.popleft(), qos=self.qos)
            self._resuming = False

    def status(self, client: Any = None, **changes: Any) -> None:
        """Publish the retained status (state online, last seen now), with ``changes``."""
        with self._lock:
            self.info.update(changes)
            payload = json.dumps({**self.info, "state": "online", "last_seen": _now()})
            self._status_at = time.monotonic()
            if self.muted:
                return
        (client or self.client).publish(self.status_topic, payload, qos=1, retain=True)

    def telemetry(self, line: bytes | str | dict[str, Any]) -> None:
        """Publish one telemetry record (a JSON line as the serial port carries it)."""
        if isinstance(line, dict):
            payload = json.dumps(line).encode()
        else:
            payload = line.strip() if isinstance(line, bytes) else line.strip().encode()
        if not payload or self.muted:  # a summary-mode board between two summaries
            return
        if self.qos > 0:
            with self._lock:
                link = getattr(self, "link", None)
                if link is None or not link.connected or self._resuming or self._backlog:
                    if len(self._backlog) >= MAX_QUEUED:
                        self._dropped()
                    else:
                        self._backlog.append(payload)
                        self.published += 1
                    return
        info = self.client.publish(self.telemetry_topic, payload, qos=self.qos)
        if info.rc == mqtt.QUEUE_FULL:
            self._dropped()
            return
        self.published += 1
        self._last = info
        if time.monotonic() - self._status_at > STATUS_EVERY_S:
            self.status()

    def _dropped(self) -> None:
        self.dropped += 1
        if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
            log.warning("broker unreachable and %d messages waiting: %d dropped",
                        MAX_QUEUED, self.dropped)

    def close(self, timeout: float = 5.0) -> None:
        """Send what waits (for up to ``timeout`` s, the broker may be coming back), say
        offline (retained) and disconnect."""
        deadline = time.monotonic() + timeout
        payload = json.dumps({**self.info, "state": "offline", "last_seen": _now()})
        try:
            if self._backlog and self.link.wait(True, timeout):
                self._flush()  # closing: no point waiting for the views any longer
            if self._last is not None and self.link.wait(True, timeout):
                self._last.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if self._last is not None and not self._last.is_published():
                log.warning("closing with telemetry not yet accepted by the broker %s",
                            self.client.broker)
            if self.link.connected:
                self.client.publish(self.status_topic, payload, qos=1,
                                    retain=True).wait_for_publish(3)
        except (RuntimeError, ValueError) as exc:
            log.debug("offline status not sent: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()
