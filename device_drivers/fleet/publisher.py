"""Publishing one device's telemetry: the virtual board (``tinyops sim --mqtt``) and the
USB bridge (``tinyops bridge``) both use :class:`FleetPublisher`."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import datetime, timezone
from typing import Any

from device_drivers.fleet import mqtt

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class FleetPublisher:
    """Connected to the broker until :meth:`close`; the last will marks the device offline."""

    def __init__(self, url: str, device_id: str, *, fleet: str = mqtt.DEFAULT_FLEET,
                 board: str | None = None, firmware: str | None = None,
                 model_sha256: str | None = None) -> None:
        self.fleet = mqtt.check_name(fleet, "fleet name")
        self.device_id = mqtt.check_name(device_id)
        self.info: dict[str, Any] = {"device_id": device_id, "board": board,
                                     "firmware": firmware, "model_sha256": model_sha256}
        self.telemetry_topic = mqtt.topic(self.fleet, device_id, "telemetry")
        self.status_topic = mqtt.topic(self.fleet, device_id, "status")
        will = json.dumps({**self.info, "state": "offline"}).encode()
        self.client = mqtt.connect(url, client_id=f"tinyops-{self.fleet}-{device_id}",
                                   will=(self.status_topic, will))
        self.published = 0
        self._status_at = 0.0
        self._lock = threading.Lock()
        self.status()

    def status(self, **changes: Any) -> None:
        """Publish the retained status (state online, last seen now), with ``changes``."""
        with self._lock:
            self.info.update(changes)
            payload = json.dumps({**self.info, "state": "online", "last_seen": _now()})
            self._status_at = time.monotonic()
        self.client.publish(self.status_topic, payload, qos=1, retain=True)

    def telemetry(self, line: bytes | str | dict[str, Any]) -> None:
        """Publish one telemetry record (a JSON line as the serial port carries it)."""
        if isinstance(line, dict):
            payload = json.dumps(line).encode()
        else:
            payload = line.strip() if isinstance(line, bytes) else line.strip().encode()
        if not payload:  # a summary-mode board between two summaries: nothing to send
            return
        self.client.publish(self.telemetry_topic, payload, qos=0)
        self.published += 1
        if time.monotonic() - self._status_at > STATUS_EVERY_S:
            self.status()

    def close(self) -> None:
        """Say offline (retained) and disconnect."""
        payload = json.dumps({**self.info, "state": "offline", "last_seen": _now()})
        try:
            self.client.publish(self.status_topic, payload, qos=1, retain=True).wait_for_publish(3)
        except (RuntimeError, ValueError) as exc:
            log.debug("offline status not sent: %s", exc)
        self.client.disconnect()
        self.client.loop_stop()
