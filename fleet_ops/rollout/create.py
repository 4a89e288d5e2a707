"""Making a rollout: the model verified, the devices chosen, each device's step fixed, all
stored (the CLI's ``tinyops rollout create``, the GUI, the tests and the benchmark).

Devices: an explicit list, or the devices of the fleet that reported a status, narrowed by a
cohort: ``NAME`` matches a device whose status says ``"cohort": NAME`` or ``"board": NAME``,
or whose id matches ``NAME`` as a shell pattern (``lab-*``).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError
from fleet_ops.fleet import mqtt
from fleet_ops.records.uuid7 import uuid7
from fleet_ops.rollout.gates import parse_rules
from fleet_ops.rollout.plan import (
    DEFAULT_HEALTH_WINDOW_S,
    DEFAULT_RULES,
    DEFAULT_STEPS,
    Rollout,
    assign_steps,
    parse_steps,
)
from fleet_ops.rollout.preflight import model_facts
from fleet_ops.rollout.store import RolloutStore


def select_devices(statuses: dict[str, Any], cohort: str | None) -> list[str]:
    """The fleet's devices (by their retained status) in ``cohort`` (all when None)."""
    out = []
    for device_id, status in statuses.items():
        if not mqtt.valid_name(device_id) or not isinstance(status, dict):
            continue
        if cohort is None or status.get("cohort") == cohort or status.get("board") == cohort \
                or fnmatch.fnmatchcase(device_id, cohort):
            out.append(device_id)
    return sorted(out)


def create_rollout(store: RolloutStore, model_path: str | Path, *, fleet: str, mqtt_url: str,
                   devices: list[str], steps: str | list[int] = DEFAULT_STEPS,
                   health_window_s: float = DEFAULT_HEALTH_WINDOW_S,
                   rules: str | list[str] = DEFAULT_RULES, cohort: str | None = None,
                   explicit: bool = False, rollout_id: str | None = None) -> Rollout:
    """Verify the model, check the plan, store it (state ``created``); ``InputError`` with
    what to do when something is wrong."""
    model = model_facts(model_path)
    try:
        step_list = parse_steps(steps)
        rule_list = [r.text for r in parse_rules(rules)]
    except ValueError as exc:
        raise InputError(str(exc), "see `tinyops rollout create --help`") from None
    if not health_window_s > 0:
        raise InputError(f"the health window must be positive, not {health_window_s}",
                         "give --health-window SECONDS")
    bad = [d for d in devices if not mqtt.valid_name(d)]
    if bad:
        raise InputError(f"not a device id: {bad[0]!r}", "device ids are MQTT topic levels")
    if not devices:
        raise InputError("no device to update", "check --fleet, --cohort or --devices (the "
                         "devices must have published a status)")
    rid = rollout_id or str(uuid7())
    plan = Rollout(id=rid, model_name=model.name, model_sha256=model.sha256,
                   model_size=model.size, fleet=mqtt.check_name(fleet, "fleet name"),
                   mqtt_url=mqtt.redact(mqtt_url), steps=step_list,
                   health_window_s=float(health_window_s), rules=rule_list,
                   devices=sorted(set(devices)) if explicit else None, cohort=cohort,
                   model_path=str(Path(model_path).resolve()))
    store.create(plan, assign_steps(rid, devices, step_list))
    return store.get(rid)
