"""Per-device health from the fleet view (``fleet_ops.fleet.monitor.FleetMonitor``).

The monitor keeps, per device and since the device's status last named a new model: the
drift score against that model's card baseline, the mean top-class confidence, the latency
p95, the errors and resets it reported, and when it was last heard. :class:`HealthView`
reads them as :class:`~fleet_ops.rollout.gates.DeviceHealth` for the gates: a device that took
the model and was not heard since ``since`` (the window's start, or its install) is silent.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from fleet_ops.rollout.gates import DeviceHealth


class HealthView:
    def __init__(self, monitor: Any) -> None:
        self.monitor = monitor

    def figures(self, device_ids: Iterable[str], *, since: dict[str, float] | float | None = None,
                failed: Iterable[str] = ()) -> list[DeviceHealth]:
        """Health of ``device_ids``; ``since``: monotonic time (one for all, or per device)
        after which each must have been heard (None: silence is not judged)."""
        failed = set(failed)
        out = []
        mon = self.monitor
        with mon._lock:
            for device_id in device_ids:
                h = DeviceHealth(device_id, failed=device_id in failed)
                dev = mon.devices.get(device_id)
                start = since.get(device_id) if isinstance(since, dict) else since
                if dev is None:
                    h.silent = start is not None
                    out.append(h)
                    continue
                row = dev.summary()
                h.drift = row["drift_score"]
                h.drifting = h.drift is not None and h.drift > mon.threshold
                h.confidence = row["confidence_mean"]
                h.latency_p95 = row["latency_us_p95"]
                h.errors, h.resets = dev.errors, dev.resets
                h.samples = dev.conf_n
                h.silent = start is not None and dev.heard < start
                out.append(h)
        return out

    def heard_since(self, device_id: str, since: float) -> bool:
        dev = self.monitor.devices.get(device_id)
        return dev is not None and dev.heard >= since

    @staticmethod
    def now() -> float:
        """The clock the monitor stamps messages with."""
        return time.monotonic()
