"""The fleet view: subscribe to a fleet's topics and summarise each device.

Per device: model sha256, board, firmware, state, last seen, messages, class distribution
(top-1 of each message's ``scores``, or a summary message's class counts), latency p50/p95,
drift score against the baseline of its model (from model cards, matched by sha256) and
alerts. An alert is also written as a provisioning record (operation ``drift``), once per
device and run.

Every message from the broker goes through the telemetry decoder
(``device_drivers.telemetry.message``: size, depth, finite numbers, clean labels) and one
exception boundary: a message that fails is dropped and counted with its reason
(``malformed_reasons``), never stops the view. Device ids must be valid topic levels
(``mqtt.check_name``). At most ``max_devices`` are tracked: past it the devices heard from
only once are dropped first, least recently heard first, then the least recently heard of
the others (``dropped_devices``): a flood of made-up ids cannot push real devices out.

States: ``unknown`` while the broker is unreachable (``broker.unreachable_since``),
``offline`` from the device's status (or its last will), ``silent`` when nothing came from
it for ``silent_periods`` of its reporting periods (measured from its messages: the summary
period, or the interval between raw messages; at least :data:`MIN_PERIOD_S`), else the state
its status gives. The subscriptions are made again on every reconnection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from device_drivers.telemetry.message import BadMessage, decode_status, decode_telemetry
from fleet_ops.fleet import mqtt
from fleet_ops.fleet.drift import (
    DEFAULT_THRESHOLD,
    DEFAULT_WINDOW,
    DriftWindow,
    load_baselines,  # noqa: F401  (re-exported: the CLI and the GUI load cards through here)
)

log = logging.getLogger(__name__)

DEFAULT_MAX_DEVICES = 10_000
SILENT_PERIODS = 3
MIN_PERIOD_S = 1.0
VIEW_QOS = 0
"""The view's subscription QoS. Its session is clean (a restarted broker forgets it anyway),
so QoS 1 on this last hop would protect nothing a disconnection does not lose either; at
QoS 0 the broker forwards without the 20-message in-flight window and without the
per-subscriber queue (``max_queued_messages``) that overflows when stations send the backlog
of an outage (measured: README)."""
DEFAULT_PERIOD_S = 10.0
"""A device's reporting period before two messages tell it (the status refresh interval)."""


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Device:
    device_id: str
    status: dict[str, Any] = field(default_factory=dict)
    messages: int = 0
    inferences: int = 0
    summaries: int = 0
    malformed: int = 0
    last_seen: str | None = None
    classes: Counter[str] = field(default_factory=Counter)
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=5000))
    period_p50: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    period_p95: deque[float] = field(default_factory=lambda: deque(maxlen=500))
    window: DriftWindow | None = None
    drift: dict[str, float] | None = None
    alerts: list[dict[str, Any]] = field(default_factory=list)
    heard: float = 0.0  # time.monotonic() of its last message (telemetry or status)
    period_s: float | None = None  # its reporting period, measured
    conf_sum: float = 0.0  # top-class confidence of its results (health: mean)
    conf_n: int = 0
    errors: int = 0  # errors it reported (``errors`` counter or ``error`` messages)
    resets: int = 0  # times its telemetry ``seq`` went back (a restart)
    last_seq: int | None = None

    def new_model(self) -> None:
        """Health figures start again: they describe the model it runs now."""
        self.latencies.clear()
        self.period_p50.clear()
        self.period_p95.clear()
        self.conf_sum, self.conf_n, self.errors, self.resets = 0.0, 0, 0, 0

    def health(self, data: dict[str, Any]) -> None:
        """Errors and resets from one telemetry object."""
        errors, seq = data.get("errors"), data.get("seq")
        if type(errors) is int and 0 <= errors < 1 << 31:
            self.errors = max(self.errors, errors)
        elif data.get("error"):
            self.errors += 1
        if type(seq) is int:
            if self.last_seq is not None and seq < self.last_seq:
                self.resets += 1
            self.last_seq = seq

    def heard_now(self, now: float, period_s: float | None = None) -> None:
        if period_s is None and self.heard and self.messages:
            gap = now - self.heard
            period_s = gap if self.period_s is None else 0.8 * self.period_s + 0.2 * gap
        if period_s is not None:
            self.period_s = period_s
        self.heard = now

    def state(self, now: float, silent_periods: int) -> str | None:
        # decode_status let it in only as a string or null
        state: str | None = self.status.get("state")
        if state == "offline":
            return state
        period = max(MIN_PERIOD_S, self.period_s or DEFAULT_PERIOD_S)
        if self.heard and now - self.heard > silent_periods * period:
            return "silent"
        return state or ("online" if self.messages else None)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float, values: list[float] | None = None) -> float | None:
            values = lat if values is None else values
            return values[min(len(values) - 1, int(p * len(values)))] if values else None

        p50, p95 = pct(0.5), pct(0.95)
        if not lat:  # summary mode: the median of the periods' own percentiles
            p50, p95 = pct(0.5, sorted(self.period_p50)), pct(0.5, sorted(self.period_p95))
        total = sum(self.classes.values())
        return {"device_id": self.device_id, "state": self.status.get("state"),
                "model_sha256": self.status.get("model_sha256"),
                "board": self.status.get("board"), "firmware": self.status.get("firmware"),
                "last_seen": self.last_seen or self.status.get("last_seen"),
                "messages": self.messages, "inferences": self.inferences,
                "summaries": self.summaries, "malformed": self.malformed,
                "class_distribution": {k: round(v / total, 4) for k, v in
                                       sorted(self.classes.items())} if total else {},
                "latency_us_p50": p50, "latency_us_p95": p95,
                "drift_score": self.drift["score"] if self.drift else None,
                "confidence_mean": round(self.conf_sum / self.conf_n, 4) if self.conf_n
                else None, "errors": self.errors, "resets": self.resets,
                "drift": self.drift, "alerts": self.alerts}


class FleetMonitor:
    """Subscribes to ``tinyops/<fleet>/+/telemetry`` and ``…/status`` until :meth:`close`,
    again after every reconnection."""

    def __init__(self, url: str, *, fleet: str = mqtt.DEFAULT_FLEET,
                 baselines: dict[str, dict[str, Any]] | None = None,
                 window: int = DEFAULT_WINDOW, threshold: float = DEFAULT_THRESHOLD,
                 record_alerts: bool = True, max_devices: int = DEFAULT_MAX_DEVICES,
                 silent_periods: int = SILENT_PERIODS) -> None:
        self.fleet = mqtt.check_name(fleet, "fleet name")
        self.baselines = baselines or {}
        self.window, self.threshold = window, threshold
        self.record_alerts = record_alerts
        self.max_devices, self.silent_periods = max(1, max_devices), max(1, silent_periods)
        self.devices: OrderedDict[str, Device] = OrderedDict()
        """Least recently heard first."""
        self.malformed = 0
        self.malformed_reasons: Counter[str] = Counter()
        self.dropped_devices = 0
        self._once: OrderedDict[str, None] = OrderedDict()
        self.on_counted: Callable[[str, dict[str, Any]], None] | None = None
        """Called (on the MQTT thread, under the lock: keep it short) with each telemetry
        object once it is counted: the GUI's device view and the scale benchmark use it."""
        self._to_record: list[Any] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        """Set once the broker acknowledged the subscriptions (the first time)."""
        self.url = mqtt.redact(url)
        self._final: dict[str, Any] | None = None
        subs = [(mqtt.topic(self.fleet, "+", kind), VIEW_QOS) for kind in ("telemetry", "status")]
        self.client = mqtt.connect(url, subscriptions=subs, backoff=mqtt.VIEW_BACKOFF_S,
                                   on_message=self._on_message,
                                   on_subscribe=self._on_subscribe)
        self.link: mqtt.Link = self.client.link

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, _codes: Any, _p: Any = None) -> None:
        self.subscribed.set()

    def _device(self, device_id: str) -> Device:
        dev = self.devices.get(device_id)
        if dev is None:
            while len(self.devices) >= self.max_devices:
                if self._once:  # heard from once only (a flood of made-up ids) go first
                    gone, _ = self._once.popitem(last=False)
                    del self.devices[gone]
                else:
                    self.devices.popitem(last=False)  # then the one heard least recently
                self.dropped_devices += 1
            dev = self.devices[device_id] = Device(device_id)
            self._once[device_id] = None
        else:
            self.devices.move_to_end(device_id)
            self._once.pop(device_id, None)
        return dev

    def _bad(self, reason: str, dev: Device | None = None) -> None:
        self.malformed += 1
        self.malformed_reasons[reason] += 1
        if dev is not None:
            dev.malformed += 1

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        """The one exception boundary of the network thread."""
        try:
            self._message(msg)
        except Exception as exc:  # never let one message stop the view
            log.exception("fleet message on %.80r not counted", msg.topic)
            with self._lock:
                self._bad(f"internal error ({type(exc).__name__})")

    def _message(self, msg: Any) -> None:
        parts = mqtt.split_topic(msg.topic)
        if parts is None or parts[2] not in ("telemetry", "status"):
            with self._lock:
                self._bad("bad topic")
            return
        _, device_id, kind = parts
        if not mqtt.valid_name(device_id):
            with self._lock:
                self._bad("bad device id")
            return
        try:
            data = decode_status(msg.payload) if kind == "status" else \
                decode_telemetry(msg.payload)
        except BadMessage as exc:
            with self._lock:
                dev = self.devices.get(device_id)
                if dev is None and kind == "telemetry":  # a known id: tell it in its row
                    dev = self._device(device_id) if len(msg.payload) <= 4096 else None
                self._bad(exc.reason, dev)
            return
        with self._lock:
            dev = self._device(device_id)
            if kind == "status":
                self._status(dev, data)
                dev.heard_now(time.monotonic(), dev.period_s)
            else:
                self._telemetry(dev, data)

    def _status(self, dev: Device, data: dict[str, Any]) -> None:
        sha = dev.status.get("model_sha256")
        dev.status = data
        if data.get("model_sha256") != sha:
            if sha is not None:
                dev.new_model()
            base = self.baselines.get(str(data.get("model_sha256")))
            dev.window = DriftWindow(base, self.window, self.threshold) if base else None
            dev.drift = None

    def _telemetry(self, dev: Device, data: dict[str, Any]) -> None:
        summary = data["summary"]
        period = summary["period_ms"] / 1000 if summary and summary["period_ms"] else None
        dev.heard_now(time.monotonic(), period)
        if summary is not None:
            self._summary(dev, data["obj"], summary)
        else:
            self._raw(dev, data["obj"], data["scores"], data["latency_us"])

    def _counted(self, dev: Device, data: dict[str, Any]) -> None:
        dev.health(data)
        dev.messages += 1
        dev.last_seen = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if self.on_counted is not None:
            self.on_counted(dev.device_id, data)

    def _summary(self, dev: Device, data: dict[str, Any], s: dict[str, Any]) -> None:
        dev.summaries += 1
        dev.inferences += int(s["n"])
        for key, target in (("latency_us_p50", dev.period_p50),
                            ("latency_us_p95", dev.period_p95)):
            if s[key] is not None:
                target.append(float(s[key]))
        dev.classes.update({k: v for k, v in s["counts"].items() if v})
        hist = s.get("confidence_hist") or []
        if sum(hist):
            dev.conf_sum += sum((i + 0.5) / len(hist) * h for i, h in enumerate(hist))
            dev.conf_n += sum(hist)
        if dev.window is not None:
            dev.window.add_summary(s["counts"], s["confidence_hist"])
            self._check_drift(dev)
        self._counted(dev, data)

    def _raw(self, dev: Device, data: dict[str, Any], scores: dict[str, float] | None,
             latency: float | None) -> None:
        if latency is not None:
            dev.latencies.append(float(latency))
        if scores:
            dev.inferences += 1
            label, top = max(scores.items(), key=lambda kv: kv[1])
            dev.classes[label] += 1
            dev.conf_sum += float(top)
            dev.conf_n += 1
            if dev.window is not None:
                dev.window.add(scores)
                self._check_drift(dev)
        self._counted(dev, data)

    def _check_drift(self, dev: Device) -> None:
        assert dev.window is not None
        dev.drift = dev.window.score()
        if dev.drift and dev.drift["score"] > self.threshold and not dev.alerts:
            self._alert(dev)

    def _alert(self, dev: Device) -> None:
        assert dev.drift is not None
        alert = {"kind": "drift", "time": dev.last_seen, "threshold": self.threshold,
                 "window": dev.window.samples if dev.window else 0, **dev.drift}
        dev.alerts.append(alert)
        log.warning("drift alert for %s: score %.3f > %.3f", dev.device_id,
                    dev.drift["score"], self.threshold)
        if self.record_alerts:
            from fleet_ops.records import Record

            self._to_record.append(Record(
                operation="drift", result="alert", port=f"mqtt:{self.fleet}",
                board=dev.status.get("board"), usb_serial=dev.device_id,
                artifact_sha256=dev.status.get("model_sha256"),
                verify=f"drift {dev.drift['score']:.3f} > {self.threshold}", details=alert))

    def write_alert_records(self) -> int:
        """Write the alerts raised so far as provisioning records (outside the MQTT thread:
        a records server may be slow); returns how many were written."""
        from fleet_ops.records import add_record

        with self._lock:
            pending, self._to_record = self._to_record, []
        return sum(1 for rec in pending if add_record(rec) is not None)

    def run(self, duration_s: float) -> None:
        time.sleep(max(0.0, duration_s))

    def broker(self) -> dict[str, Any]:
        """``{"url", "connected", "unreachable_since", "reason", "reconnects"}``."""
        if self._final is not None:
            return dict(self._final)
        link = self.link
        return {"url": self.url, "connected": link.connected,
                "unreachable_since": None if link.connected else _iso(link.down_since),
                "reason": None if link.connected else link.reason,
                "reconnects": link.reconnects}

    def summary(self) -> dict[str, Any]:
        broker = self.broker()
        now = time.monotonic()
        with self._lock:
            devices = []
            for _, dev in sorted(self.devices.items()):
                row = dev.summary()
                row["state"] = "unknown" if not broker["connected"] else \
                    dev.state(now, self.silent_periods)
                row["period_s"] = None if dev.period_s is None else round(dev.period_s, 3)
                devices.append(row)
            reasons = dict(self.malformed_reasons)
            malformed, dropped = self.malformed, self.dropped_devices
        return {"fleet": self.fleet, "broker": broker, "devices": devices,
                "malformed": malformed, "malformed_reasons": reasons,
                "dropped_devices": dropped, "alerts": sum(len(d["alerts"]) for d in devices)}

    def close(self) -> None:
        """Disconnect; :meth:`summary` then tells the broker's state as it was at this point."""
        if getattr(self, "link", None) is not None and self._final is None:
            self._final = self.broker()
        self.client.disconnect()
        self.client.loop_stop()
