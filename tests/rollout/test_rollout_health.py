"""Per-device health as the gates read it (``HealthView`` over a real ``FleetMonitor`` fed
through a real Mosquitto): confidence, latency p95, errors, resets from ``seq`` going back,
figures starting again when the device names a new model, silence."""

from __future__ import annotations

import json
import time
from typing import Any

import paho.mqtt.client as paho
from rollout_harness import wait_until

from fleet_ops.fleet.monitor import FleetMonitor
from fleet_ops.rollout.health import HealthView


def test_health_figures_from_the_fleet_view(rollout_broker: Any) -> None:
    mon = FleetMonitor(rollout_broker.url, fleet="hv", record_alerts=False)
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="hv-dev")
    host, port = rollout_broker.url.removeprefix("mqtt://").split(":")
    c.connect(host, int(port))
    c.loop_start()
    try:
        assert mon.subscribed.wait(10)
        view = HealthView(mon)

        def pub(kind: str, body: dict[str, Any]) -> None:
            c.publish(f"tinyops/hv/d1/{kind}", json.dumps(body), qos=1).wait_for_publish(5)

        pub("status", {"state": "online", "model_sha256": "aa" * 32})
        for seq, (top, lat) in enumerate([(0.9, 1000), (0.7, 1200), (0.8, 5000)], 1):
            pub("telemetry", {"seq": seq, "scores": {"a": top, "b": 1 - top},
                              "latency_us": lat})
        pub("telemetry", {"seq": 1, "scores": {"a": 0.6, "b": 0.4}, "latency_us": 1100,
                          "errors": 2})  # seq back to 1: a reset
        wait_until(lambda: mon.devices.get("d1") is not None and
                   mon.devices["d1"].messages == 4, 10, "four results")
        [h] = view.figures(["d1"], since=0.0)
        assert h.confidence == round((0.9 + 0.7 + 0.8 + 0.6) / 4, 4)
        assert h.latency_p95 == 5000 and h.errors == 2 and h.resets == 1
        assert not h.silent and h.drift is None  # no card baseline for this model
        later = time.monotonic()
        [h] = view.figures(["d1"], since=later)
        assert h.silent  # nothing heard since
        pub("status", {"state": "online", "model_sha256": "bb" * 32})  # a new model
        pub("telemetry", {"seq": 2, "scores": {"a": 0.5, "b": 0.5}, "latency_us": 900})
        wait_until(lambda: mon.devices["d1"].messages == 5, 10, "the fifth result")
        [h] = view.figures(["d1"], since=later)
        assert (h.confidence, h.latency_p95, h.errors, h.resets) == (0.5, 900, 0, 0)
        assert not h.silent
        [never] = view.figures(["ghost"], since=later)
        assert never.silent and never.confidence is None
    finally:
        c.loop_stop()
        c.disconnect()
        mon.close()
