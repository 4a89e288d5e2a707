"""The orchestrator's side of the MQTT model-update protocol: :class:`MqttUpdater`.

It publishes ``update/offer`` (retained) for a device and answers the device's
``update/want`` messages from memory with binary ``update/chunk`` messages; the device pulls,
so nothing here waits for a device and one client serves any number of them (no thread per
device: every want is answered in paho's network thread). Results (``update/result``,
retained) go to the ``on_result`` callbacks; an offer is cleared (empty retained message)
once its device answered it. After a broker restart the client subscribes again
(``fleet_ops.fleet.mqtt.connect``) and publishes every pending offer again (a broker without
persistence lost them); the devices then ask for the offset they have.

Bytes: ``bytes_sent(device)`` counts every chunk message's payload (header included) and
``resent_bytes(device)`` the part of it for offsets already sent once.
Protocol: ``resources/protocol/fleet_mqtt.md``, "Model updates".
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleet_ops.fleet import mqtt
from fleet_ops.rollout.agent import CHUNK, HEADER, MAX_WANT

log = logging.getLogger(__name__)

MAX_STATUS_BYTES = 16 * 1024
DUPLICATE_WANT_S = 1.0
"""A want for the offset answered less than this ago is not answered again (the device
re-asks after its own timeout, 3 s, if the chunks were really lost)."""
_client_ids = itertools.count(1)


@dataclass
class PendingOffer:
    device_id: str
    rollout: str
    action: str
    sha256: str
    name: str
    data: bytes = field(repr=False)
    chunk: int = CHUNK
    attempt: int = 1

    def payload(self) -> bytes:
        return json.dumps({"rollout": self.rollout, "action": self.action,
                           "sha256": self.sha256, "size": len(self.data), "name": self.name,
                           "chunk": self.chunk, "attempt": self.attempt}).encode()


@dataclass
class UpdateResult:
    """One ``update/result`` as a device reported it. ``matches_offer``: it answers the
    offer pending for this device (same rollout, action and sha256); ``confirmed``: an
    ``installed`` whose device also runs (``model_sha256``) the offered sha256 — a report
    for another sha256 is never a success."""

    device_id: str
    rollout: str
    action: str
    sha256: str
    outcome: str
    reason: str
    model_sha256: str | None
    previous_sha256: str | None
    matches_offer: bool = False

    @property
    def confirmed(self) -> bool:
        return self.outcome == "installed" and self.matches_offer and \
            self.model_sha256 == self.sha256


@dataclass
class Traffic:
    bytes_sent: int = 0
    resent_bytes: int = 0
    chunks: int = 0
    wants: int = 0
    high_water: int = 0  # highest offset sent for the current offer
    duplicate_wants: int = 0
    last_want: tuple[int, float] = (-1, 0.0)  # (offset, time.monotonic()) last answered


class MqttUpdater:
    """Offers models to the devices of one fleet and serves their wants (module docstring)."""

    def __init__(self, url: str, fleet: str = mqtt.DEFAULT_FLEET, *, wait: bool = True,
                 client_id: str | None = None) -> None:
        self.fleet = mqtt.check_name(fleet, "fleet name")
        self._lock = threading.Lock()
        self._offers: dict[str, PendingOffer] = {}
        self._traffic: dict[str, Traffic] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._results: dict[str, UpdateResult] = {}
        self._callbacks: list[Callable[[UpdateResult], None]] = []
        self.bad_messages = 0
        self._bad_status: dict[str, int] = {}
        base = f"{mqtt.ROOT}/{self.fleet}/+"
        self.subscribed = threading.Event()
        self.client = mqtt.connect(
            url, client_id or f"tinyops-updater-{self.fleet}-{os.getpid()}-{next(_client_ids)}",
            subscriptions=[(f"{base}/update/want", 1), (f"{base}/update/result", 1),
                           (f"{base}/status", 1)],
            on_connected=self._connected, wait=wait, backoff=mqtt.VIEW_BACKOFF_S,
            on_message=self._on_message, on_subscribe=lambda *_a: self.subscribed.set())
        self.link: mqtt.Link = self.client.link

    # ---- the orchestrator's calls ------------------------------------------------------
    def offer(self, device_id: str, rollout_id: str, model_bytes: bytes, sha256: str,
              action: str = "install", name: str = "", *, attempt: int = 1,
              chunk: int = CHUNK) -> None:
        """Offer ``model_bytes`` (install) or the held previous model ``sha256`` (rollback,
        ``model_bytes`` may be empty) to ``device_id``; returns at once."""
        mqtt.check_name(device_id)
        if action not in ("install", "rollback"):
            raise ValueError(f"action must be install or rollback, not {action!r}")
        if action == "install" and hashlib.sha256(model_bytes).hexdigest() != sha256:
            log.warning("offer to %s: sha256 %s is not the model's (the device will refuse "
                        "it)", device_id, sha256[:12])
        if not 0 < chunk <= MAX_WANT - HEADER.size:
            raise ValueError(f"chunk must be 1..{MAX_WANT - HEADER.size} bytes")
        pending = PendingOffer(device_id, rollout_id, action, sha256.lower(), name,
                               bytes(model_bytes) if action == "install" else b"", chunk,
                               attempt)
        with self._lock:
            self._offers[device_id] = pending
            traffic = self._traffic.setdefault(device_id, Traffic())
            traffic.high_water, traffic.last_want = 0, (-1, 0.0)
        self.client.publish(self._topic(device_id, "update/offer"), pending.payload(),
                            qos=1, retain=True)

    def cancel(self, device_id: str) -> None:
        """Withdraw the pending offer of ``device_id`` (clears the retained offer)."""
        with self._lock:
            self._offers.pop(device_id, None)
        self.client.publish(self._topic(device_id, "update/offer"), b"", qos=1, retain=True)

    def on_result(self, callback: Callable[[UpdateResult], None]) -> None:
        """``callback(result)`` for every result (called in the network thread; retained
        results of earlier offers arrive too, so a restarted orchestrator learns them)."""
        self._callbacks.append(callback)

    def pending(self) -> dict[str, PendingOffer]:
        with self._lock:
            return dict(self._offers)

    def result(self, device_id: str) -> UpdateResult | None:
        with self._lock:
            return self._results.get(device_id)

    def bytes_sent(self, device_id: str) -> int:
        with self._lock:
            t = self._traffic.get(device_id)
            return t.bytes_sent if t else 0

    def resent_bytes(self, device_id: str) -> int:
        with self._lock:
            t = self._traffic.get(device_id)
            return t.resent_bytes if t else 0

    def traffic(self) -> dict[str, Traffic]:
        with self._lock:
            return {k: Traffic(**vars(v)) for k, v in self._traffic.items()}

    def devices(self) -> dict[str, dict[str, Any]]:
        """The last retained status of every device of the fleet (JSON objects only)."""
        with self._lock:
            return {k: dict(v) for k, v in self._status.items()}

    def bad_statuses(self) -> dict[str, int]:
        """Per device, how many of its status messages were not a JSON object (dropped;
        ``devices()`` keeps its last good one)."""
        with self._lock:
            return dict(self._bad_status)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # ---- the network thread --------------------------------------------------------------
    def _topic(self, device_id: str, kind: str) -> str:
        return f"{mqtt.ROOT}/{self.fleet}/{device_id}/{kind}"

    def _connected(self, client: Any) -> None:
        with self._lock:
            pending = list(self._offers.values())
        for p in pending:  # a restarted broker lost the retained offers
            client.publish(self._topic(p.device_id, "update/offer"), p.payload(), qos=1,
                           retain=True)
        if pending:
            log.info("MQTT broker (re)connected: %d pending offers published again",
                     len(pending))

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        parts = msg.topic.split("/")
        if len(parts) < 4 or parts[0] != mqtt.ROOT or parts[1] != self.fleet or \
                not mqtt.valid_name(parts[2]):
            return
        device_id, kind = parts[2], "/".join(parts[3:])
        try:
            if kind == "update/want":
                self._on_want(device_id, msg.payload)
            elif kind == "update/result":
                self._on_result(device_id, msg.payload)
            elif kind == "status":
                self._on_status(device_id, msg.payload)
        except (ValueError, KeyError, TypeError) as exc:
            self.bad_messages += 1
            log.debug("bad %s message from %s dropped: %s", kind, device_id, exc)
        except Exception:  # never let one message kill the network thread
            self.bad_messages += 1
            log.exception("handling %s from %s failed", kind, device_id)

    def _on_want(self, device_id: str, payload: bytes) -> None:
        want = json.loads(payload)
        offset, length = int(want["offset"]), int(want["length"])
        with self._lock:
            p = self._offers.get(device_id)
            if p is None or p.action != "install" or want.get("sha256") != p.sha256 or \
                    want.get("rollout") != p.rollout:
                raise ValueError("a want for no pending offer")
            if offset < 0 or length <= 0 or offset >= len(p.data):
                raise ValueError(f"want offset {offset} length {length} out of range")
            end = min(len(p.data), offset + min(length, MAX_WANT))
            prefix = bytes.fromhex(p.sha256)[:8]
            t = self._traffic.setdefault(device_id, Traffic())
            now = time.monotonic()
            if t.last_want[0] == offset and now - t.last_want[1] < DUPLICATE_WANT_S:
                t.duplicate_wants += 1  # asked again at once (a reconnect, a repeated
                return                  # offer): the answer is on its way already
            t.last_want = (offset, now)
            t.wants += 1
            messages = []
            for at in range(offset, end, p.chunk):
                body = HEADER.pack(prefix, at) + p.data[at:min(end, at + p.chunk)]
                messages.append(body)
                t.bytes_sent += len(body)
                t.chunks += 1
                if at < t.high_water:
                    t.resent_bytes += len(body)
            t.high_water = max(t.high_water, end)
        chunk_topic = self._topic(device_id, "update/chunk")
        for body in messages:
            self.client.publish(chunk_topic, body, qos=1)

    def _on_result(self, device_id: str, payload: bytes) -> None:
        if not payload:
            return
        d = json.loads(payload)
        if not isinstance(d, dict):
            raise ValueError("result is not a JSON object")
        outcome = str(d.get("outcome"))
        if outcome not in ("installed", "failed"):
            raise ValueError(f"unknown outcome {outcome!r}")
        result = UpdateResult(device_id, str(d.get("rollout")), str(d.get("action")),
                              str(d.get("sha256")), outcome, str(d.get("reason") or ""),
                              _hex_or_none(d.get("model_sha256")),
                              _hex_or_none(d.get("previous_sha256")))
        with self._lock:
            p = self._offers.get(device_id)
            result.matches_offer = p is not None and (p.rollout, p.action, p.sha256) == (
                result.rollout, result.action, result.sha256)
            if result.matches_offer:
                del self._offers[device_id]
            self._results[device_id] = result
        if result.matches_offer:  # answered: the retained offer goes
            self.client.publish(self._topic(device_id, "update/offer"), b"", qos=1,
                                retain=True)
        for callback in list(self._callbacks):
            try:
                callback(result)
            except Exception:
                log.exception("update result callback failed")

    def _on_status(self, device_id: str, payload: bytes) -> None:
        if not payload:  # a cleared retained status
            return
        try:
            if len(payload) > MAX_STATUS_BYTES:
                raise ValueError("status too large")
            d = json.loads(payload)
            if not isinstance(d, dict):
                raise ValueError("status is not a JSON object")
        except ValueError:
            with self._lock:
                self._bad_status[device_id] = self._bad_status.get(device_id, 0) + 1
            raise
        with self._lock:
            self._status[device_id] = d


def _hex_or_none(value: Any) -> str | None:
    return value.lower() if isinstance(value, str) and value else None
