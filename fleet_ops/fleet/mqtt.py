"""MQTT basics for the fleet: broker URLs (TLS, login), the topic layout, device ids, and a
client that keeps its subscriptions across reconnects.

Topics (``resources/protocol/fleet_mqtt.md``)::

    tinyops/<fleet>/<device-id>/telemetry   one JSON object per inference or summary period
    tinyops/<fleet>/<device-id>/status      retained: state, model sha256, firmware, board,
                                            last seen; the last will sets state "offline"

Broker URL: ``mqtt://[user@]host[:port]`` (plain, 1883) or ``mqtts://[user@]host[:port]``
(TLS, 8883), with optional query ``ca=FILE``, ``cert=FILE``, ``key=FILE``,
``password_file=FILE``. The password comes from ``password_file``, ``$TINYOPS_MQTT_PASSWORD``
or ``$TINYOPS_MQTT_PASSWORD_FILE`` (never from the command line, where every user sees it; a
password written in the URL is still used, with a warning). The CA, certificate and key may
also come from ``$TINYOPS_MQTT_CA``, ``$TINYOPS_MQTT_CERT``, ``$TINYOPS_MQTT_KEY`` and the user
from ``$TINYOPS_MQTT_USERNAME``. No message ever shows the password.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import parse_qs, unquote, urlsplit

from device_drivers.errors import InputError, TinyOpsError

log = logging.getLogger(__name__)

ROOT = "tinyops"
DEFAULT_FLEET = "default"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_ID_LEN = 64
CONNECT_TIMEOUT_S = 5.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 10
"""Bounded backoff between a station's reconnection attempts (paho doubles from min up to
max). A fleet view retries faster (:data:`VIEW_BACKOFF_S`) so that after a broker restart it
is usually subscribed again before the stations send what they kept."""
VIEW_BACKOFF_S = (0.25, 1.0)
QUEUE_FULL = 15  # paho's MQTT_ERR_QUEUE_SIZE: the publisher's queue is full
_QUERY_KEYS = {"ca", "cert", "key", "password_file"}
URL_HINT = ("write it as mqtt://host:port or mqtts://host:port (e.g. mqtt://127.0.0.1:1883); "
            "passwords go in $TINYOPS_MQTT_PASSWORD or ?password_file=FILE")


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def __str__(self) -> str:  # never the password
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"


def redact(url: str) -> str:
    """``url`` without its password (for messages and logs)."""
    try:
        parts = urlsplit(url.strip())
        if parts.password is not None:
            netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
            return parts._replace(netloc=netloc, query="").geturl()
        return parts._replace(query="").geturl()
    except ValueError:
        return "the MQTT URL"


def _read_secret(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip("\r\n")
    except OSError as exc:
        raise InputError(f"cannot read the MQTT {what} file {path}: {exc.strerror or exc}",
                         "give a readable file holding only the password") from exc


def parse_url(url: str) -> Broker:
    """``mqtt[s]://[user@]host[:port][?ca=…&cert=…&key=…&password_file=…]`` → Broker;
    ``InputError`` (without the password) for anything else."""
    shown = redact(url)
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        tls = scheme in ("mqtts", "ssl")
        port = parts.port or (8883 if tls else 1883)
        query = {k: v[-1] for k, v in parse_qs(parts.query, strict_parsing=False).items()}
    except ValueError:
        raise InputError(f"bad MQTT URL {shown!r}", URL_HINT) from None
    if scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not parts.hostname:
        raise InputError(f"bad MQTT URL {shown!r}", URL_HINT)
    unknown = set(query) - _QUERY_KEYS
    if unknown:
        raise InputError(f"bad MQTT URL {shown!r}: unknown option(s) {', '.join(sorted(unknown))}",
                         f"options are {', '.join(sorted(_QUERY_KEYS))}")
    env = os.environ
    username = unquote(parts.username) if parts.username else env.get("TINYOPS_MQTT_USERNAME")
    password: str | None = None
    if parts.password is not None:
        log.warning("the MQTT password is written in the URL (visible in the process list); "
                    "use $TINYOPS_MQTT_PASSWORD or ?password_file=FILE instead")
        password = unquote(parts.password)
    elif query.get("password_file") or env.get("TINYOPS_MQTT_PASSWORD_FILE"):
        password = _read_secret(query.get("password_file")
                                or env["TINYOPS_MQTT_PASSWORD_FILE"], "password")
    elif env.get("TINYOPS_MQTT_PASSWORD"):
        password = env["TINYOPS_MQTT_PASSWORD"]
    ca = query.get("ca") or env.get("TINYOPS_MQTT_CA") or None
    cert = query.get("cert") or env.get("TINYOPS_MQTT_CERT") or None
    key = query.get("key") or env.get("TINYOPS_MQTT_KEY") or None
    for what, path in (("CA", ca), ("certificate", cert), ("key", key)):
        if path and not Path(path).is_file():
            raise InputError(f"the MQTT {what} file {path} does not exist",
                             "give the PEM file's path")
    if (ca or cert) and not tls:
        raise InputError(f"a CA or client certificate needs TLS, but {shown!r} is plain MQTT",
                         "write the URL as mqtts://host:8883")
    return Broker(parts.hostname, port, tls, username or None, password, ca, cert, key)


def check_name(value: object, what: str = "device id") -> str:
    """A fleet name or device id usable as one topic level: letters, digits, ``.``, ``_``,
    ``-``, at most 64, starting with a letter or digit (no ``/``, ``+``, ``#``)."""
    if not isinstance(value, str) or not _NAME.match(value):
        shown = repr(value[:MAX_ID_LEN] + "…") if isinstance(value, str) and \
            len(value) > MAX_ID_LEN else ascii(value)
        raise InputError(f"invalid {what} {shown}",
                         f"use letters, digits, '.', '_' or '-' (at most 64) for the {what}")
    return value


def valid_name(value: object) -> bool:
    return isinstance(value, str) and bool(_NAME.match(value))


def topic(fleet: str, device_id: str, kind: str) -> str:
    return f"{ROOT}/{fleet}/{device_id}/{kind}"


def split_topic(name: str) -> tuple[str, str, str] | None:
    """(fleet, device id, kind) of a fleet topic, or None."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != ROOT:
        return None
    return parts[1], parts[2], parts[3]


class Link:
    """The connection state a client reports: connected, and since when it is not."""

    def __init__(self) -> None:
        self.connected = False
        self.down_since: float | None = None  # time.time() of the first failure
        self.reason = ""
        self.reconnects = 0
        self.ever_up = False
        self.changed = threading.Condition()

    def up(self) -> None:
        with self.changed:
            if self.ever_up and not self.connected:
                self.reconnects += 1
            self.ever_up = True
            self.connected, self.down_since, self.reason = True, None, ""
            self.changed.notify_all()

    def down(self, reason: str) -> None:
        with self.changed:
            if self.connected or self.down_since is None:
                self.down_since = time.time()
            self.connected, self.reason = False, reason
            self.changed.notify_all()

    def wait(self, connected: bool, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.connected == connected, timeout)


class _Tagged(Protocol):
    """A paho Client as :func:`connect` returns it: ``link`` tells the connection's state,
    ``broker`` the parsed URL it connects to."""

    link: Link
    broker: Broker


def connect(url: str, client_id: str = "", *, will: tuple[str, bytes] | None = None,
            subscriptions: list[tuple[str, int]] | None = None,
            on_connected: Callable[[Any], None] | None = None,
            wait: bool = True, max_queued: int = 0,
            backoff: tuple[float, float] = (RECONNECT_MIN_S, RECONNECT_MAX_S),
            on_message: Callable[..., None] | None = None,
            on_subscribe: Callable[..., None] | None = None) -> Any:
    """A paho client for ``url`` with its network loop running, that subscribes to
    ``subscriptions`` and calls ``on_connected(client)`` on **every** (re)connection and
    reconnects with bounded backoff. ``client.link`` (:class:`Link`) tells the state.

    ``wait``: connect now, one-line ``TinyOpsError`` if the broker cannot be reached or
    refuses; otherwise return at once and keep trying in the background (a station started
    while its broker is down). ``will`` is (topic, retained payload)."""
    import ssl

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    broker = parse_url(url)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    link = Link()
    tagged = cast(_Tagged, client)  # the two attributes this module adds to paho's Client
    tagged.link = link
    tagged.broker = broker
    # paho annotates whole seconds but computes with any number: the view's 0.25 s is meant
    client.reconnect_delay_set(backoff[0], backoff[1])  # type: ignore[arg-type]
    if max_queued:
        client.max_queued_messages_set(max_queued)
    if will is not None:
        client.will_set(will[0], will[1], qos=1, retain=True)
    if broker.username or broker.password:
        client.username_pw_set(broker.username or "", broker.password)
    if broker.tls:
        try:
            client.tls_set(ca_certs=broker.ca, certfile=broker.cert, keyfile=broker.key,
                           cert_reqs=ssl.CERT_REQUIRED)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise InputError(f"cannot use the TLS files for {broker}: {exc}",
                             "check the CA, certificate and key (PEM) files") from None
    first = threading.Event()
    result: dict[str, Any] = {}

    def on_connect(c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        result["reason"] = reason
        if reason.is_failure:
            link.down(str(reason))
        else:
            if subscriptions:
                c.subscribe(subscriptions)
            link.up()
            if on_connected is not None:
                try:
                    on_connected(c)
                except Exception:  # a callback must never kill the network thread
                    log.exception("MQTT on-connect handler failed")
        first.set()

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any = None) -> None:
        link.down(f"disconnected ({reason})")
        if not first.is_set():  # closed before it answered: say so at once
            result["closed"] = ("the broker closed the connection before answering"
                                + (" (does it require a client certificate? ?cert=…&key=…)"
                                   if broker.tls else " (a TLS port? then write mqtts://)"))
            first.set()

    def on_connect_fail(_c: Any, _u: Any) -> None:
        link.down("cannot connect")

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_connect_fail = on_connect_fail
    if on_message is not None:  # set before connecting: the first messages come at once
        client.on_message = on_message
    if on_subscribe is not None:
        client.on_subscribe = on_subscribe
    if not wait:
        link.down("connecting")
        client.connect_async(broker.host, broker.port, keepalive=15)
        client.loop_start()
        return client
    try:
        client.connect(broker.host, broker.port, keepalive=15)
    except (OSError, ValueError) as exc:
        text = str(exc)
        if isinstance(exc, ssl.SSLError):
            text = f"TLS failed ({exc.reason or exc})"
        raise TinyOpsError(f"cannot reach the MQTT broker {broker}: {text}",
                           "start the broker (mosquitto) or fix the --mqtt URL") from None
    client.loop_start()
    answered = first.wait(CONNECT_TIMEOUT_S)
    if not answered or "reason" not in result or result["reason"].is_failure:
        client.disconnect()
        client.loop_stop()
        reason = result.get("reason") or result.get("closed") or (
            f"no MQTT answer within {CONNECT_TIMEOUT_S:g} s"
            + ("" if broker.tls else " (a TLS port? then write mqtts://)"))
        raise TinyOpsError(f"the MQTT broker {broker} refused the connection: {reason}",
                           "check the broker's address, the login (user, "
                           "$TINYOPS_MQTT_PASSWORD) and its access settings")
    return client
