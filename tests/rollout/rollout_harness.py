"""The rollout tests' harness: a swarm of simulated MQTT devices on a real Mosquitto, a
rollout store (SQLite file or real PostgreSQL), and an orchestrator run in a thread with its
own updater and fleet view, as ``tinyops rollout`` runs it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from fleet_ops.fleet.monitor import FleetMonitor
from fleet_ops.rollout.orchestrator import Orchestrator
from fleet_ops.rollout.plan import Event, Rollout
from fleet_ops.rollout.preflight import model_facts
from fleet_ops.rollout.store import RolloutStore
from fleet_ops.rollout.transfer import MqttUpdater

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "resources/examples/vibration/model_int8.tflite"
OLD_MODEL = b"the model the devices ran before" * 100
OPS = ["CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "RESHAPE",
       "SOFTMAX", "QUANTIZE", "DEQUANTIZE"]


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    if not predicate():
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


class Run:
    """One orchestrator in a thread (``start``), its events and its result."""

    def __init__(self, store: RolloutStore, url: str, fleet: str, *, stall_s: float = 5.0
                 ) -> None:
        baseline = model_facts(MODEL).baseline
        self.updater = MqttUpdater(url, fleet)
        self.monitor = FleetMonitor(url, fleet=fleet, record_alerts=False,
                                    baselines={model_facts(MODEL).sha256: baseline or {}})
        self.events: list[Event] = []
        self.orch = Orchestrator(store, self.updater, self.monitor, stall_s=stall_s,
                                 settle_s=1.5, on_event=self.events.append)
        self.cancel = threading.Event()
        self.result: Rollout | None = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def start(self, rollout_id: str) -> Run:
        def go() -> None:
            try:
                self.result = self.orch.run(rollout_id, self.cancel)
            except BaseException as exc:  # reported by join()
                self.error = exc

        self.thread = threading.Thread(target=go, daemon=True)
        self.thread.start()
        return self

    def join(self, timeout: float) -> Rollout:
        assert self.thread is not None
        self.thread.join(timeout)
        if self.thread.is_alive():
            self.cancel.set()
            self.thread.join(30)
            raise AssertionError(f"the rollout did not end in {timeout:g} s")
        self.close()
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result

    def close(self) -> None:
        self.updater.close()
        self.monitor.close()


def step_of(store: RolloutStore, rid: str) -> dict[str, int]:
    return {e.device_id: e.step_index for e in store.devices(rid)}


def kinds(store: RolloutStore, rid: str) -> list[str]:
    return [e.kind for e in store.events(rid)]

