"""A rollout's plan and state: the dataclasses every rollout module shares, JSON in and out.

A rollout sends one model to part of a fleet step by step (``steps``: cumulative percent of
its devices). Each device's step is fixed when the rollout is created (:func:`assign_steps`:
devices ordered by ``sha256(rollout_id + device_id)``), so the cohorts are the same after a
restart.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

DEFAULT_STEPS = [5, 25, 50, 100]
DEFAULT_HEALTH_WINDOW_S = 60.0
DEFAULT_RULES = ["drift>0.2", "drifting>10%", "failed>2%", "silent>0"]
MAX_ATTEMPTS = 2
"""A device that fails the same update this many times is FAILED and not retried by itself."""
ACTIONS = ("pause", "resume", "abort", "rollback")


class RolloutState(str, Enum):
    """created → running ⇄ paused; running → halted | completed | aborted; halted|completed
    → rolling_back → rolled_back."""

    CREATED = "created"
    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"
    COMPLETED = "completed"
    ABORTED = "aborted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"

    @property
    def finished(self) -> bool:
        return self in (RolloutState.COMPLETED, RolloutState.ABORTED, RolloutState.ROLLED_BACK)


class DeviceStep(str, Enum):
    """One device in one rollout."""

    PENDING = "pending"
    SKIPPED = "skipped"          # preflight failed; the reason is kept
    OFFERED = "offered"
    TRANSFERRING = "transferring"
    INSTALLED = "installed"
    HEALTHY = "healthy"          # passed its step's gate
    FAILED = "failed"            # MAX_ATTEMPTS failed attempts: not retried by itself
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"

    @property
    def took(self) -> bool:
        """The device runs the rollout's model."""
        return self in (DeviceStep.INSTALLED, DeviceStep.HEALTHY)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Rollout:
    id: str
    model_name: str
    model_sha256: str
    model_size: int
    fleet: str
    mqtt_url: str                       # redacted form only, never a password
    steps: list[int] = field(default_factory=lambda: list(DEFAULT_STEPS))
    health_window_s: float = DEFAULT_HEALTH_WINDOW_S
    rules: list[str] = field(default_factory=lambda: list(DEFAULT_RULES))
    devices: list[str] | None = None
    cohort: str | None = None
    state: RolloutState = RolloutState.CREATED
    step_index: int = 0
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)
    halt_reason: str | None = None
    requested: str | None = None
    model_path: str | None = None       # where the orchestrator reads the bytes from

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rollout:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        values["state"] = RolloutState(values.get("state", "created"))
        values["steps"] = [int(s) for s in values.get("steps") or DEFAULT_STEPS]
        values["rules"] = [str(r) for r in values.get("rules") or []]
        return cls(**values)


@dataclass
class DeviceEntry:
    rollout_id: str
    device_id: str
    step_index: int
    state: DeviceStep = DeviceStep.PENDING
    attempts: int = 0
    bytes_sent: int = 0
    previous_sha256: str | None = None
    reason: str | None = None
    updated: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeviceEntry:
        values = dict(data)
        values["state"] = DeviceStep(values.get("state", "pending"))
        return cls(**values)


EVENT_KINDS = ("created", "step_started", "sent", "installed", "failed", "skipped",
               "gate_passed", "halted", "paused", "resumed", "aborted", "rollback",
               "completed", "lock", "forged", "retry")


@dataclass
class Event:
    rollout_id: str
    kind: str
    why: str = ""
    device_id: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)
    time: str = field(default_factory=now_iso)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_steps(text: str | list[int]) -> list[int]:
    """``"5,25,50,100"`` → ``[5, 25, 50, 100]``: increasing percents, the last 100."""
    items = text if isinstance(text, list) else [s for s in str(text).split(",") if s.strip()]
    try:
        steps = [int(str(s).strip().rstrip("%")) for s in items]
    except ValueError:
        raise ValueError(f"steps must be whole percents like 5,25,50,100, not {text!r}") from None
    if not steps or any(s <= 0 or s > 100 for s in steps) or steps != sorted(set(steps)):
        raise ValueError(f"steps must increase within 1..100, not {text!r}")
    if steps[-1] != 100:
        steps.append(100)
    return steps


def order_key(rollout_id: str, device_id: str) -> str:
    return hashlib.sha256(f"{rollout_id}{device_id}".encode()).hexdigest()


def assign_steps(rollout_id: str, device_ids: list[str], steps: list[int]) -> dict[str, int]:
    """Each device's step: the devices ordered by ``sha256(rollout_id + device_id)``, step
    ``i`` taking them up to ``ceil(steps[i]% of n)`` (at least one device per step when
    there are devices left)."""
    ordered = sorted(set(device_ids), key=lambda d: order_key(rollout_id, d))
    n = len(ordered)
    out: dict[str, int] = {}
    start = 0
    for i, pct in enumerate(steps):
        end = n if i == len(steps) - 1 else min(n, max(start + 1, math.ceil(n * pct / 100)))
        for device in ordered[start:end]:
            out[device] = i
        start = end
    return out
