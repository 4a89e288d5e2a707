"""Many light simulated MQTT devices in one process (rollout tests, the 1,000-device benchmark).

    swarm = Swarm("mqtt://127.0.0.1:1883", "scale", 1000, model=old_model,
                  behaviours={3: "drift"}).start()
    swarm.device(3).target.current      # the model bytes the device runs
    swarm.stop()

Each device has one paho client (one TCP connection, its own client id and last will), all
driven by one selector thread (paho's socket callbacks and ``loop_read``/``loop_write``/
``loop_misc``; no thread per device), an :class:`~fleet_ops.rollout.agent.UpdateAgent` over a
:class:`~fleet_ops.rollout.agent.MemoryTarget` (model bytes in memory, sha256 checked, no
TFLM), a retained status (``model_sha256``, ``previous_sha256``, ``board``, ``ops``,
``arena_max``, ``model_max``, ``update``) and telemetry at ``rate_hz`` (class ``scores`` and
``latency_us``, the fleet view's health inputs). A lost broker is retried per device with
bounded backoff.

Behaviour **after an update** (the device runs a model other than its first one):
``ok``; ``drift`` (mostly ``bearing_fault``: another class mix); ``slow`` (latency +50 %);
``silent`` (no telemetry nor status any more); ``garbage`` (its status is not JSON).
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import selectors
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from fleet_ops.fleet import mqtt
from fleet_ops.rollout.agent import MemoryTarget, UpdateAgent

log = logging.getLogger(__name__)

LABELS = ("normal", "imbalance", "bearing_fault")
STEADY_MIX = (1 / 3, 1 / 3, 1 / 3)
DRIFT_MIX = (0.1, 0.1, 0.8)
BEHAVIOURS = ("ok", "drift", "slow", "silent", "garbage")
BASE_LATENCY_US = 1800
STATUS_EVERY_S = 10.0


def _run_now(job: Callable[[], None]) -> None:
    """The swarm's installer: install on the network thread (memory targets are instant)."""
    job()


def default_ops() -> list[str]:
    """The operators the TinyOps firmware registers (``firmware/tflm/ops.def``): what a
    swarm device says its runtime runs unless told otherwise."""
    try:
        from device_drivers.firmware.build import op_set

        return [name for name, _method, _kernels in op_set()]
    except (OSError, ValueError, ImportError):  # an installed app without firmware sources
        return ["CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX",
                "MAX_POOL_2D", "AVERAGE_POOL_2D", "QUANTIZE", "DEQUANTIZE", "MEAN"]


@dataclass
class SwarmDevice:
    index: int
    device_id: str
    target: MemoryTarget
    behaviour: str = "ok"
    client: Any = None
    agent: UpdateAgent = field(init=False, repr=False)
    initial_sha256: str | None = None
    connected: bool = False
    next_try: float = 0.0
    backoff: float = 0.5
    seq: int = 0
    next_telemetry: float = 0.0
    status_at: float = 0.0
    telemetry_sent: int = 0

    @property
    def model_sha256(self) -> str | None:
        sha: str | None = self.target.facts()["model_sha256"]
        return sha

    @property
    def updated(self) -> bool:
        return self.model_sha256 != self.initial_sha256

    @property
    def acting(self) -> str:
        """What it does now: its behaviour once updated, else ``ok``."""
        return self.behaviour if self.updated else "ok"


class Swarm:
    """``n`` devices ``<prefix>-00000``… in fleet ``fleet`` (see the module docstring)."""

    def __init__(self, url: str, fleet: str = mqtt.DEFAULT_FLEET, n: int = 10, *,
                 prefix: str = "sim", model: bytes | None = None, rate_hz: float = 1.0,
                 behaviours: dict[int, str] | None = None, board: str = "virtual",
                 ops: list[str] | None = None, arena_max: int = 65536,
                 model_max: int = 262144, seed: int = 0) -> None:
        self.broker = mqtt.parse_url(url)
        if self.broker.tls:
            raise ValueError("the swarm speaks plain MQTT only")
        self.fleet = mqtt.check_name(fleet, "fleet name")
        self.rate_hz = rate_hz
        self._rng = random.Random(seed)
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._calls: list[Callable[[], None]] = []
        self._calls_lock = threading.Lock()
        self.devices: list[SwarmDevice] = []
        ops = list(ops) if ops is not None else default_ops()
        for i in range(n):
            dev_id = mqtt.check_name(f"{prefix}-{i:05d}")
            target = MemoryTarget(model, board=board, ops=ops,
                                  arena_max=arena_max, model_max=model_max)
            dev = SwarmDevice(i, dev_id, target, (behaviours or {}).get(i, "ok"))
            if dev.behaviour not in BEHAVIOURS:
                raise ValueError(f"behaviour {dev.behaviour!r}: one of {', '.join(BEHAVIOURS)}")
            dev.initial_sha256 = target.facts()["model_sha256"]
            dev.agent = UpdateAgent(self.fleet, dev_id, target, self._publisher(dev),
                                    on_status=self._status_hook(dev),
                                    installer=_run_now)
            self.devices.append(dev)

    # ---- API ---------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        return [d.device_id for d in self.devices]

    def device(self, i: int) -> SwarmDevice:
        return self.devices[i]

    def start(self, timeout: float = 60.0) -> Swarm:
        """Connect every device; returns once all are connected (``TimeoutError`` if not)."""
        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        for dev in self.devices:
            c = paho.Client(CallbackAPIVersion.VERSION2,
                            client_id=f"tinyops-{self.fleet}-{dev.device_id}")
            c.max_inflight_messages_set(100)
            will = {"device_id": dev.device_id, "board": dev.target.board, "state": "offline"}
            c.will_set(mqtt.topic(self.fleet, dev.device_id, "status"),
                       json.dumps(will).encode(), qos=1, retain=True)
            c.on_connect = lambda cl, _u, _f, rc, _p=None, d=dev: self._on_connect(d, rc)
            c.on_disconnect = lambda _c, _u, _f, _rc, _p=None, d=dev: self._on_disconnect(d)
            c.on_message = lambda _c, _u, msg, d=dev: d.agent.handle(msg.topic, msg.payload)
            c.on_socket_open = lambda _c, _u, sock, d=dev: self._register(sock, d)
            c.on_socket_close = lambda _c, _u, sock: self._unregister(sock)
            dev.client = c
        self._thread = threading.Thread(target=self._loop, daemon=True, name="swarm")
        self._thread.start()
        thread = self._thread
        if not self.wait(lambda: all(d.connected for d in self.devices) or
                         not thread.is_alive(), timeout) or not thread.is_alive():
            raise TimeoutError(f"{sum(not d.connected for d in self.devices)} of "
                               f"{len(self.devices)} devices not connected in {timeout:g} s")
        return self

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            time.sleep(0.05)
        return predicate()

    def call(self, job: Callable[[], None]) -> None:
        """Run ``job`` in the swarm's thread (paho clients are not thread-safe)."""
        with self._calls_lock:
            self._calls.append(job)

    def restart(self, i: int) -> None:
        """Device ``i`` drops its connection (a reboot; what it downloaded so far is kept, as
        a device that stores its partial download does) and reconnects by itself."""
        dev = self.devices[i]

        def drop() -> None:
            if dev.client.socket() is not None:
                dev.client.disconnect()
                dev.client.loop_write()
            dev.connected = False
            dev.next_try = time.monotonic() + 0.2

        self.call(drop)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    # ---- the loop ----------------------------------------------------------------------
    def _publisher(self, dev: SwarmDevice) -> Callable[[str, bytes, int, bool], Any]:
        def publish(topic: str, payload: bytes, qos: int, retain: bool) -> Any:
            return dev.client.publish(topic, payload, qos=qos, retain=retain)
        return publish

    def _register(self, sock: Any, dev: SwarmDevice) -> None:
        self._sel.register(sock, selectors.EVENT_READ, dev)

    def _unregister(self, sock: Any) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(sock)

    def _on_connect(self, dev: SwarmDevice, reason: Any) -> None:
        if reason.is_failure:
            return
        dev.connected, dev.backoff = True, 0.5
        dev.client.subscribe(dev.agent.subscriptions())
        self._status(dev, force=True)
        dev.agent.connected()

    def _on_disconnect(self, dev: SwarmDevice) -> None:
        dev.connected = False
        dev.next_try = time.monotonic() + dev.backoff * (0.5 + self._rng.random())

    def _loop(self) -> None:
        now = time.monotonic()
        for i, dev in enumerate(self.devices):  # first connections, 50 at a time
            self._try_connect(dev, first=True)
            if self.rate_hz > 0:
                dev.next_telemetry = now + (i / len(self.devices)) / self.rate_hz
            if i % 50 == 49:
                self._pump(0)
        last_misc = time.monotonic()
        while not self._stop.is_set():
            self._pump(0.02)
            with self._calls_lock:
                calls, self._calls = self._calls, []
            for job in calls:
                job()
            now = time.monotonic()
            for dev in self.devices:
                if not dev.connected:
                    if dev.client.socket() is None and now >= dev.next_try:
                        self._try_connect(dev)
                    continue
                if self.rate_hz > 0 and now >= dev.next_telemetry:
                    dev.next_telemetry += 1.0 / self.rate_hz
                    if dev.next_telemetry < now:  # behind (a pause): do not burst
                        dev.next_telemetry = now + 1.0 / self.rate_hz
                    self._telemetry(dev)
                if now - dev.status_at > STATUS_EVERY_S:
                    self._status(dev)
            if now - last_misc > 0.5:
                last_misc = now
                for dev in self.devices:
                    if dev.client.socket() is not None:
                        dev.client.loop_misc()
                    dev.agent.tick(now)
        for dev in self.devices:  # goodbye: offline (retained), as a station says it
            if dev.connected:
                body = {"device_id": dev.device_id, "board": dev.target.board,
                        "state": "offline", **dev.agent.status_fields()}
                dev.client.publish(mqtt.topic(self.fleet, dev.device_id, "status"),
                                   json.dumps(body).encode(), qos=1, retain=True)
                dev.client.disconnect()
                dev.client.loop_write()

    def _try_connect(self, dev: SwarmDevice, first: bool = False) -> None:
        try:
            if first:
                dev.client.connect(self.broker.host, self.broker.port, keepalive=30)
            else:
                dev.client.reconnect()
        except OSError:
            dev.backoff = min(5.0, dev.backoff * 2)
            dev.next_try = time.monotonic() + dev.backoff * (0.5 + self._rng.random())

    def _pump(self, timeout: float) -> None:
        for key, _ in self._sel.select(timeout):
            dev = key.data
            dev.client.loop_read()
        for dev in self.devices:
            if dev.client.want_write():
                dev.client.loop_write()

    # ---- what a device says --------------------------------------------------------------
    def _status_hook(self, dev: SwarmDevice) -> Callable[[dict[str, Any]], None]:
        """The agent's ``on_status`` for ``dev``: publish its status now."""
        def hook(_facts: dict[str, Any]) -> None:
            self._status(dev)
        return hook

    def _status(self, dev: SwarmDevice, force: bool = False) -> None:
        dev.status_at = time.monotonic()
        if not dev.connected and not force:
            return
        acting = dev.acting
        if acting == "silent":
            return
        topic = mqtt.topic(self.fleet, dev.device_id, "status")
        if acting == "garbage":
            dev.client.publish(topic, b"\xff{garbage", qos=1, retain=True)
            return
        body = {"device_id": dev.device_id, "firmware": "tinyops-swarm", "state": "online",
                "last_seen": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
                **dev.agent.status_fields()}
        dev.client.publish(topic, json.dumps(body).encode(), qos=1, retain=True)

    def _telemetry(self, dev: SwarmDevice) -> None:
        acting = dev.acting
        if acting == "silent":
            return
        mix = DRIFT_MIX if acting == "drift" else STEADY_MIX
        top = self._rng.choices(range(len(LABELS)), weights=mix)[0]
        scores = {lab: (0.9 if k == top else 0.05) for k, lab in enumerate(LABELS)}
        latency = BASE_LATENCY_US + self._rng.randint(-40, 40)
        if acting == "slow":
            latency = int(latency * 1.5)
        dev.seq += 1
        body = {"t": dev.seq * 1000, "scores": scores, "latency_us": latency,
                "heap_free": 40960, "seq": dev.seq}
        dev.client.publish(mqtt.topic(self.fleet, dev.device_id, "telemetry"),
                           json.dumps(body).encode(), qos=0)
        dev.telemetry_sent += 1
