"""MQTT basics for the fleet: broker URLs, the topic layout, device ids, a connected client.

Topics (``resources/protocol/fleet_mqtt.md``)::

    tinyops/<fleet>/<device-id>/telemetry   one JSON object per inference (the serial format)
    tinyops/<fleet>/<device-id>/status      retained: state, model sha256, firmware, board,
                                            last seen; the last will sets state "offline"
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from device_drivers.errors import InputError, TinyOpsError

ROOT = "tinyops"
DEFAULT_FLEET = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
CONNECT_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Broker:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_url(url: str) -> Broker:
    """``mqtt://host[:port]`` (or ``tcp://``) → Broker; ``InputError`` for anything else."""
    hint = "write it as mqtt://host:port (e.g. mqtt://127.0.0.1:1883)"
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 1883
    except ValueError as exc:
        raise InputError(f"bad MQTT URL {url!r}: {exc}", hint) from exc
    if parts.scheme not in ("mqtt", "tcp") or not parts.hostname:
        raise InputError(f"bad MQTT URL {url!r}", hint)
    return Broker(parts.hostname, port)


def check_name(value: str, what: str = "device id") -> str:
    """A fleet name or device id usable as one topic level: letters, digits, ``.``, ``_``,
    ``-``, at most 64, starting with a letter or digit (no ``/``, ``+``, ``#``)."""
    if not _NAME.match(value or ""):
        raise InputError(f"invalid {what} {value!r}",
                         f"use letters, digits, '.', '_' or '-' (at most 64) for the {what}")
    return value


def topic(fleet: str, device_id: str, kind: str) -> str:
    return f"{ROOT}/{fleet}/{device_id}/{kind}"


def split_topic(name: str) -> tuple[str, str, str] | None:
    """(fleet, device id, kind) of a fleet topic, or None."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        return None
    return parts[1], parts[2], parts[3]


def connect(url: str, client_id: str = "", *, will: tuple[str, bytes] | None = None) -> Any:
    """A paho client connected to ``url`` with its network loop running; one-line
    ``TinyOpsError`` when the broker cannot be reached. ``will`` is (topic, retained payload)."""
    import paho.mqtt.client as paho

    broker = parse_url(url)
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    connected = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        result["reason"] = reason
        connected.set()

    client.on_connect = on_connect
    try:
        client.connect(broker.host, broker.port, keepalive=15)
    except (OSError, ValueError) as exc:
        raise TinyOpsError(f"cannot reach the MQTT broker {broker}: {exc}",
                           "start the broker (mosquitto) or fix the --mqtt URL") from exc
    client.loop_start()
    if not connected.wait(CONNECT_TIMEOUT_S) or result["reason"].is_failure:
        client.loop_stop()
        reason = result.get("reason", "no answer")
        raise TinyOpsError(f"the MQTT broker {broker} refused the connection: {reason}",
                           "check the broker's address and its access settings")
    return client
