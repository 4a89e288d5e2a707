"""The Fleet page's broker connection, off the GUI thread: a plain thread connects the fleet
aggregator (``fleet_ops.fleet.monitor.FleetMonitor``, which may block for seconds) and every
half second hands its summary and the chosen device's messages over through signals."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from PySide6.QtCore import QObject, Signal

SUMMARY_EVERY_S = 0.5


class FleetWorker(QObject):
    """One broker connection: the aggregator, its summaries and the chosen device's data."""

    summary = Signal(object)  # FleetMonitor.summary()
    samples = Signal(str, object)  # device id, [(host time, telemetry object)]
    failed = Signal(str)
    started = Signal(str)  # the URL, once subscribed

    def __init__(self, url: str, fleet: str, cards: list[str] | None = None) -> None:
        super().__init__()
        self.url, self.fleet = url, fleet
        self.cards = list(cards or [])
        self.device: str | None = None
        self.monitor: Any = None
        self.thread_ident: int | None = None
        self._stop = threading.Event()
        self._queue: deque[tuple[str, float, dict[str, Any]]] = deque(maxlen=20000)
        self._thread = threading.Thread(target=self._run, name="fleet-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _counted(self, device_id: str, data: dict[str, Any]) -> None:
        if device_id == self.device:  # on paho's thread: keep it short
            self._queue.append((device_id, time.time(), data))

    def _run(self) -> None:
        from fleet_ops.fleet.drift import card_files, load_baselines
        from fleet_ops.fleet.monitor import FleetMonitor
        from tinyops_base.errors import TinyOpsError

        self.thread_ident = threading.get_ident()
        try:
            monitor = FleetMonitor(self.url, fleet=self.fleet,
                                   baselines=load_baselines(card_files(self.cards)))
        except TinyOpsError as exc:
            self.failed.emit(exc.message)
            return
        monitor.on_counted = self._counted
        self.monitor = monitor
        try:
            if not monitor.subscribed.wait(5):
                self.failed.emit(f"the MQTT broker {self.url} did not confirm the subscription")
                return
            self.started.emit(self.url)
            while not self._stop.wait(SUMMARY_EVERY_S):
                self.summary.emit(monitor.summary())
                batch = []
                while self._queue:
                    dev, t, data = self._queue.popleft()
                    if dev == self.device:
                        batch.append((t, data))
                if batch and self.device:
                    self.samples.emit(self.device, batch)
                monitor.write_alert_records()
        finally:
            monitor.close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
