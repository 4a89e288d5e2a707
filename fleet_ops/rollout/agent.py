"""A device's side of the MQTT model-update protocol (``resources/protocol/fleet_mqtt.md``,
"Model updates"): :class:`UpdateAgent`.

The device pulls: on an ``update/offer`` it asks for the bytes it lacks (``update/want`` with
the offset it has), takes ``update/chunk`` messages only in order, asks again when nothing
came for :data:`WANT_TIMEOUT_S` (a lost message, a broker restart), checks the sha256 of the
whole model, hands it to its :class:`Target` (which loads it atomically and keeps the previous
model for rollback) and reports ``update/result`` (retained). A rollback offer names the
previous model's sha256: the device switches back to the model it still holds, or says that
it does not hold it.

The agent owns no connection: its host gives it ``publish(topic, payload, qos, retain)``,
feeds it the messages of :meth:`UpdateAgent.subscriptions` (``handle``), tells it about every
(re)connection (``connected``) and calls ``tick`` now and then (the virtual board and the
bridge from a thread: :meth:`UpdateAgent.start_ticker`; the swarm from its selector loop).
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger(__name__)

CHUNK = 4096
"""Default chunk size (bytes of model per ``update/chunk`` message)."""
WANT_WINDOW = 4
"""Chunks asked for in one ``want`` (the next want goes when they all came)."""
MAX_WANT = 64 * 1024
"""The most bytes one ``want`` may ask for (the updater clamps larger asks)."""
WANT_TIMEOUT_S = 3.0
MAX_QUIET_S = 60.0
HEADER = struct.Struct(">8sI")
"""``update/chunk`` header: the first 8 bytes of the model's sha256 (raw), the offset (u32)."""
TOPICS = ("update/offer", "update/want", "update/chunk", "update/result")


class UpdateRefused(Exception):
    """The target would not take the model (the message is the result's ``reason``)."""


class Target(Protocol):
    """What a device does with a verified model."""

    def facts(self) -> dict[str, Any]:
        """``model_sha256``, ``previous_sha256``, ``board``, ``ops``, ``arena_max``,
        ``model_max`` (any may be None when unknown)."""

    def install(self, data: bytes, sha256: str, name: str) -> None:
        """Load ``data`` (sha256 already checked) atomically; raise :class:`UpdateRefused`."""

    def rollback(self, sha256: str) -> None:
        """Switch back to the held previous model ``sha256``; raise :class:`UpdateRefused`."""


class MemoryTarget:
    """A device whose models are bytes in memory (the swarm, tests): install = switch."""

    def __init__(self, model: bytes | None = None, *, board: str = "virtual",
                 ops: list[str] | None = None, arena_max: int = 65536,
                 model_max: int = 262144, refuse: Callable[[bytes], str | None] | None = None
                 ) -> None:
        self.current: bytes | None = model
        self.previous: bytes | None = None
        self.board, self.ops = board, list(ops or [])
        self.arena_max, self.model_max = arena_max, model_max
        self.refuse = refuse
        self.installs = 0

    @staticmethod
    def _sha(data: bytes | None) -> str | None:
        return hashlib.sha256(data).hexdigest() if data is not None else None

    def facts(self) -> dict[str, Any]:
        return {"model_sha256": self._sha(self.current),
                "previous_sha256": self._sha(self.previous), "board": self.board,
                "ops": self.ops, "arena_max": self.arena_max, "model_max": self.model_max}

    def install(self, data: bytes, sha256: str, name: str) -> None:
        why = self.refuse(data) if self.refuse else None
        if why:
            raise UpdateRefused(why)
        self.previous, self.current = self.current, data
        self.installs += 1

    def rollback(self, sha256: str) -> None:
        if self.previous is None or self._sha(self.previous) != sha256:
            raise UpdateRefused(f"previous model {sha256[:12]} is not held by the device")
        self.previous, self.current = self.current, self.previous


@dataclass
class Offer:
    rollout: str
    action: str
    sha256: str
    size: int
    name: str
    chunk: int
    attempt: int = 1

    @classmethod
    def parse(cls, payload: bytes) -> Offer:
        d = json.loads(payload)
        if not isinstance(d, dict):
            raise ValueError("offer is not a JSON object")
        sha = str(d["sha256"]).lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise ValueError("offer sha256 is not 64 hex digits")
        offer = cls(str(d["rollout"]), str(d.get("action", "install")), sha,
                    int(d.get("size") or 0), str(d.get("name") or ""),
                    int(d.get("chunk") or CHUNK), int(d.get("attempt") or 1))
        if offer.action not in ("install", "rollback") or offer.size < 0 or \
                not 0 < offer.chunk <= MAX_WANT:
            raise ValueError("offer action/size/chunk out of range")
        return offer

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.rollout, self.action, self.sha256, self.attempt)


def topic_of(fleet: str, device_id: str, kind: str) -> str:
    return f"tinyops/{fleet}/{device_id}/{kind}"


class UpdateAgent:
    """One device's update state machine (see the module docstring)."""

    def __init__(self, fleet: str, device_id: str, target: Target,
                 publish: Callable[[str, bytes, int, bool], Any], *,
                 on_status: Callable[[dict[str, Any]], None] | None = None,
                 installer: Callable[[Callable[[], None]], None] | None = None,
                 partial_dir: str | Path | None = None, window: int = WANT_WINDOW) -> None:
        self.fleet, self.device_id, self.target = fleet, device_id, target
        self._publish = publish
        self.on_status = on_status
        self.installer = installer or _in_thread
        self.partial_dir = Path(partial_dir) if partial_dir else None
        self.window = window
        self.state = "idle"  # idle | receiving | installing | failed
        self.offer: Offer | None = None
        self.buf = bytearray()
        self.asked_upto = 0
        self.last_progress = 0.0
        self.last_result: dict[str, Any] | None = None
        self.unanswered = 0  # re-asks in a row without a chunk
        self.done: set[tuple[str, str, str, int]] = set()
        self.wants = self.rewants = self.ignored_chunks = self.bytes_received = 0
        self.installed_callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._lock = threading.RLock()
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # ---- wiring ------------------------------------------------------------------------
    def topic(self, kind: str) -> str:
        return topic_of(self.fleet, self.device_id, kind)

    def subscriptions(self) -> list[tuple[str, int]]:
        return [(self.topic("update/offer"), 1), (self.topic("update/chunk"), 1)]

    def status_fields(self) -> dict[str, Any]:
        facts = dict(self.target.facts())
        facts["update"] = self.state if self.state != "installing" else "receiving"
        return facts

    def connected(self) -> None:
        """On every (re)connection: the last result again (a restarted broker lost it) and,
        mid-transfer, the want again (it may have been lost)."""
        with self._lock:
            if self.last_result is not None:
                self._send("update/result", json.dumps(self.last_result).encode(), True)
            if self.state == "receiving":
                self.unanswered = 0
                self._want(resend=True)

    def start_ticker(self, every_s: float = 0.5) -> None:
        def run() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.tick()
                except Exception:  # the ticker outlives a bad moment
                    log.exception("update agent tick failed")

        self._ticker = threading.Thread(target=run, daemon=True, name="update-agent")
        self._ticker.start()

    def stop(self) -> None:
        self._stop.set()

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.state == "receiving" and now - self.last_progress > self._quiet_s():
                self.unanswered += 1
                self._want(resend=True, now=now)

    def _quiet_s(self) -> float:
        """How long to wait for a chunk before asking again: 3 s, doubling with every ask
        that went unanswered, at most a minute (an orchestrator that is gone is not asked
        twenty times a minute for hours)."""
        return float(min(MAX_QUIET_S, WANT_TIMEOUT_S * 2 ** min(self.unanswered, 5)))

    # ---- messages ----------------------------------------------------------------------
    def handle(self, topic: str, payload: bytes) -> None:
        if topic.endswith("/update/offer"):
            self._on_offer(payload)
        elif topic.endswith("/update/chunk"):
            self._on_chunk(payload)

    def _on_offer(self, payload: bytes) -> None:
        if not payload:  # the offer was withdrawn: stop asking (what came stays kept)
            with self._lock:
                if self.state == "receiving":
                    self.offer, self.state = None, "idle"
                    self._status()
            return
        try:
            offer = Offer.parse(payload)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("%s: bad update offer ignored (%s)", self.device_id, exc)
            return
        with self._lock:
            if self.state == "installing":
                return
            last = self.last_result
            if offer.key in self.done and last is not None and \
                    (last["rollout"], last["sha256"]) == (offer.rollout, offer.sha256):
                self._send("update/result", json.dumps(last).encode(), True)  # said already
                return
            current = self.target.facts().get("model_sha256")
            if offer.sha256 == current:  # never installed twice: it runs it already
                self._result(offer, "installed", "")
                return
            if offer.action == "rollback":
                self._run(offer, lambda: self.target.rollback(offer.sha256))
                return
            model_max = self.target.facts().get("model_max")
            if model_max and offer.size > int(model_max):
                self._result(offer, "failed", f"model of {offer.size} B does not fit the "
                             f"device's {model_max} B model storage")
                return
            if self.state == "receiving" and self.offer is not None and \
                    self.offer.sha256 == offer.sha256:
                self.offer = offer  # the same model again (a reconnect): go on from here
                self.unanswered = 0
                self._want(resend=True)
                return
            self.offer, self.state = offer, "receiving"
            self.buf = bytearray(self._load_partial(offer))
            self.asked_upto = len(self.buf)
            self._status()
            self._next()

    def _on_chunk(self, payload: bytes) -> None:
        with self._lock:
            offer = self.offer
            if self.state != "receiving" or offer is None or len(payload) < HEADER.size:
                self.ignored_chunks += 1
                return
            prefix, offset = HEADER.unpack_from(payload)
            if prefix != bytes.fromhex(offer.sha256)[:8] or offset != len(self.buf):
                self.ignored_chunks += 1  # another model's, a duplicate or out of order
                return
            data = payload[HEADER.size:]
            if not data or offset + len(data) > offer.size:
                self.ignored_chunks += 1
                return
            self.buf += data
            self.bytes_received += len(data)
            self.last_progress = time.monotonic()
            self.unanswered = 0
            self._save_partial(offer, data)
            if len(self.buf) < offer.size:
                if len(self.buf) >= self.asked_upto:
                    self._next()
                return
            got = hashlib.sha256(self.buf).hexdigest()
            data_all = bytes(self.buf)
            self.buf = bytearray()
            self._drop_partial()
            if got != offer.sha256:
                self._result(offer, "failed", f"sha256 mismatch: received {got[:12]}…, "
                             f"offered {offer.sha256[:12]}…; the previous model still runs")
                return
            self._run(offer, lambda: self.target.install(data_all, offer.sha256, offer.name))

    # ---- steps -------------------------------------------------------------------------
    def _next(self) -> None:
        offer = self.offer
        assert offer is not None
        if offer.size == 0:
            self._run(offer, lambda: self.target.install(b"", offer.sha256, offer.name))
            return
        self.asked_upto = min(offer.size, len(self.buf) + self.window * offer.chunk)
        self._want()

    def _want(self, resend: bool = False, now: float | None = None) -> None:
        offer = self.offer
        if offer is None:
            return
        if resend:
            self.rewants += 1
            self.asked_upto = min(offer.size, len(self.buf) + self.window * offer.chunk)
        self.wants += 1
        self.last_progress = time.monotonic() if now is None else now
        body = {"rollout": offer.rollout, "sha256": offer.sha256, "offset": len(self.buf),
                "length": self.asked_upto - len(self.buf)}
        self._send("update/want", json.dumps(body).encode(), False)

    def _run(self, offer: Offer, job: Callable[[], None]) -> None:
        """Install or roll back off the network thread (a load may take seconds)."""
        self.state = "installing"

        def work() -> None:
            try:
                job()
            except UpdateRefused as exc:
                outcome, reason = "failed", str(exc) or "refused by the device"
            except Exception as exc:  # a bug or a lost board: a failed result, never silence
                log.exception("%s: update %s failed", self.device_id, offer.sha256[:12])
                outcome, reason = "failed", f"{type(exc).__name__}: {exc}"
            else:
                outcome, reason = "installed", ""
            with self._lock:
                self._result(offer, outcome, reason)

        self.installer(work)

    def _result(self, offer: Offer, outcome: str, reason: str) -> None:
        facts = self.target.facts()
        self.last_result = {"rollout": offer.rollout, "action": offer.action,
                            "sha256": offer.sha256, "outcome": outcome, "reason": reason,
                            "model_sha256": facts.get("model_sha256"),
                            "previous_sha256": facts.get("previous_sha256")}
        self.done.add(offer.key)
        self.offer = None
        self.state = "idle" if outcome == "installed" else "failed"
        self._status()  # the status first: an installed result finds the new model_sha256
        self._send("update/result", json.dumps(self.last_result).encode(), True)
        for callback in list(self.installed_callbacks):
            callback(self.last_result)

    def _status(self) -> None:
        if self.on_status is not None:
            self.on_status(self.status_fields())

    def _send(self, kind: str, payload: bytes, retain: bool) -> None:
        try:
            self._publish(self.topic(kind), payload, 1, retain)
        except Exception as exc:  # a publish while disconnected: the tick asks again
            log.debug("%s: %s not sent (%s)", self.device_id, kind, exc)

    # ---- a partial download kept across a device restart ----------------------------------
    def _part(self) -> tuple[Path, Path] | None:
        if self.partial_dir is None:
            return None
        return self.partial_dir / "update.part", self.partial_dir / "update.json"

    def _load_partial(self, offer: Offer) -> bytes:
        paths = self._part()
        if paths is None:
            return b""
        try:
            meta = json.loads(paths[1].read_text())
            data = paths[0].read_bytes()
        except (OSError, ValueError):
            data, meta = b"", {}
        if meta.get("sha256") == offer.sha256 and len(data) <= offer.size:
            log.info("%s: resuming %s at %d B", self.device_id, offer.sha256[:12], len(data))
            return data
        paths[0].parent.mkdir(parents=True, exist_ok=True)  # the partial_dir
        paths[0].write_bytes(b"")
        paths[1].write_text(json.dumps({"sha256": offer.sha256, "size": offer.size}))
        return b""

    def _save_partial(self, offer: Offer, data: bytes) -> None:
        paths = self._part()
        if paths is not None:
            with paths[0].open("ab") as f:
                f.write(data)

    def _drop_partial(self) -> None:
        paths = self._part()
        if paths is not None:
            for p in paths:
                p.unlink(missing_ok=True)


def _in_thread(job: Callable[[], None]) -> None:
    threading.Thread(target=job, daemon=True, name="update-install").start()
