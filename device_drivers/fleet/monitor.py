"""The fleet view: subscribe to a fleet's topics and summarise each device.

Per device: model sha256, board, firmware, state, last seen, messages, class distribution
(top-1 of each message's ``scores``, or a summary message's class counts), latency p50/p95,
drift score against the baseline of its model (from model cards, matched by sha256) and
alerts. A payload that is not a JSON object with numeric scores (or a well-formed
``summary``) is dropped and counted (``malformed``). An alert is also written as a
provisioning record (operation ``drift``), once per device and run.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError
from device_drivers.fleet import mqtt
from device_drivers.fleet.drift import DEFAULT_THRESHOLD, DEFAULT_WINDOW, DriftWindow
from device_drivers.telemetry.summary import summary_record

log = logging.getLogger(__name__)


def load_baselines(cards: list[str | Path]) -> dict[str, dict[str, Any]]:
    """``{model sha256: drift baseline}`` from model card files (``*.card.json``)."""
    out: dict[str, dict[str, Any]] = {}
    for name in cards:
        try:
            card = json.loads(Path(name).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read the model card {name}: {exc}",
                             "give a .card.json written by tinyops quantize") from exc
        if isinstance(card, dict) and card.get("drift_baseline") and card.get("sha256"):
            out[card["sha256"]] = card["drift_baseline"]
        else:
            log.info("model card %s has no drift baseline (quantize again to add one)", name)
    return out


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
                "drift": self.drift, "alerts": self.alerts}


class FleetMonitor:
    """Subscribes to ``tinyops/<fleet>/+/telemetry`` and ``…/status`` until :meth:`close`."""

    def __init__(self, url: str, *, fleet: str = mqtt.DEFAULT_FLEET,
                 baselines: dict[str, dict[str, Any]] | None = None,
                 window: int = DEFAULT_WINDOW, threshold: float = DEFAULT_THRESHOLD,
                 record_alerts: bool = True) -> None:
        self.fleet = mqtt.check_name(fleet, "fleet name")
        self.baselines = baselines or {}
        self.window, self.threshold = window, threshold
        self.record_alerts = record_alerts
        self.devices: dict[str, Device] = {}
        self.malformed = 0
        self.on_counted: Callable[[str, dict[str, Any]], None] | None = None
        """Called (on the MQTT thread, under the lock: keep it short) with each telemetry
        object once it is counted: the GUI's device view and the scale benchmark use it."""
        self._to_record: list[Any] = []
        self._lock = threading.Lock()
        self.subscribed = threading.Event()
        """Set once the broker acknowledged both subscriptions."""
        self.client = mqtt.connect(url)
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.subscribe([(mqtt.topic(self.fleet, "+", kind), 1)
                               for kind in ("telemetry", "status")])

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, _codes: Any, _p: Any = None) -> None:
        self.subscribed.set()

    def _device(self, device_id: str) -> Device:
        dev = self.devices.get(device_id)
        if dev is None:
            dev = self.devices[device_id] = Device(device_id)
        return dev

    def _on_message(self, _client: Any, _userdata: Any, msg: Any) -> None:
        parts = mqtt.split_topic(msg.topic)
        if parts is None:
            return
        _, device_id, kind = parts
        try:
            data = json.loads(msg.payload)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError:
            with self._lock:
                self.malformed += 1
                self._device(device_id).malformed += 1
            return
        with self._lock:
            if kind == "status":
                self._status(self._device(device_id), data)
            elif kind == "telemetry":
                self._telemetry(self._device(device_id), data)

    def _status(self, dev: Device, data: dict[str, Any]) -> None:
        sha = dev.status.get("model_sha256")
        dev.status = data
        if data.get("model_sha256") != sha:
            base = self.baselines.get(str(data.get("model_sha256")))
            dev.window = DriftWindow(base, self.window, self.threshold) if base else None
            dev.drift = None

    def _telemetry(self, dev: Device, data: dict[str, Any]) -> None:
        if "summary" in data:
            self._summary(dev, data)
        else:
            self._raw(dev, data)

    def _counted(self, dev: Device, data: dict[str, Any]) -> None:
        dev.messages += 1
        dev.last_seen = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        if self.on_counted is not None:
            self.on_counted(dev.device_id, data)

    def _summary(self, dev: Device, data: dict[str, Any]) -> None:
        try:
            s = summary_record(data)
        except ValueError:
            s = None
        if s is None:
            dev.malformed += 1
            self.malformed += 1
            return
        dev.summaries += 1
        dev.inferences += int(s["n"])
        for key, target in (("latency_us_p50", dev.period_p50),
                            ("latency_us_p95", dev.period_p95)):
            if s[key] is not None:
                target.append(float(s[key]))
        dev.classes.update({k: v for k, v in s["counts"].items() if v})
        if dev.window is not None:
            dev.window.add_summary(s["counts"], s["confidence_hist"])
            self._check_drift(dev)
        self._counted(dev, data)

    def _raw(self, dev: Device, data: dict[str, Any]) -> None:
        scores = data.get("scores")
        latency = data.get("latency_us")
        if scores is not None and not (isinstance(scores, dict) and scores and all(
                isinstance(v, (int, float)) and not isinstance(v, bool)
                for v in scores.values())):
            dev.malformed += 1
            self.malformed += 1
            return
        if isinstance(latency, (int, float)) and not isinstance(latency, bool):
            dev.latencies.append(float(latency))
        if scores:
            dev.inferences += 1
            dev.classes[max(scores.items(), key=lambda kv: kv[1])[0]] += 1
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
            from device_drivers.records import Record

            self._to_record.append(Record(
                operation="drift", result="alert", port=f"mqtt:{self.fleet}",
                board=dev.status.get("board"), usb_serial=dev.device_id,
                artifact_sha256=dev.status.get("model_sha256"),
                verify=f"drift {dev.drift['score']:.3f} > {self.threshold}", details=alert))

    def write_alert_records(self) -> int:
        """Write the alerts raised so far as provisioning records (outside the MQTT thread:
        a records server may be slow); returns how many were written."""
        from device_drivers.records import add_record

        with self._lock:
            pending, self._to_record = self._to_record, []
        return sum(1 for rec in pending if add_record(rec) is not None)

    def run(self, duration_s: float) -> None:
        time.sleep(max(0.0, duration_s))

    def summary(self) -> dict[str, Any]:
        with self._lock:
            devices = [d.summary() for _, d in sorted(self.devices.items())]
        return {"fleet": self.fleet, "devices": devices, "malformed": self.malformed,
                "alerts": sum(len(d["alerts"]) for d in devices)}

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
