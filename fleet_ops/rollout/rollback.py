"""Rollback, the orchestrator's last phase: every device that took the model goes back to the
model it ran before (it still holds it: the load keeps the previous model), verified by its
result report (``installed`` for the previous sha256, and running it). A device that does not
confirm within the stall time is ROLLBACK_FAILED with the reason. Resumable: the retained
rollback results of an earlier run count.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from fleet_ops.rollout.plan import DeviceEntry, DeviceStep, Rollout, RolloutState

if TYPE_CHECKING:
    from fleet_ops.rollout.store import RolloutStore

_OPEN = (DeviceStep.OFFERED, DeviceStep.TRANSFERRING)
_TOOK = (DeviceStep.INSTALLED, DeviceStep.HEALTHY)


class RollbackMixin:
    """Needs the orchestrator's ``store``, ``updater``, ``entries``, ``stall_s``, ``_rolled``,
    ``_state``, ``_event``, ``_results`` and ``_tick``."""

    store: RolloutStore
    updater: Any
    entries: dict[str, DeviceEntry]
    stall_s: float
    _rolled: dict[str, Any]
    _state: Any
    _event: Any
    _results: Any
    _tick: Any

    def _rollback(self, r: Rollout, cancel: threading.Event) -> None:
        if r.state != RolloutState.ROLLING_BACK:
            self._state(r, RolloutState.ROLLING_BACK, "rollback requested", "rollback",
                        clear_request=True)
        statuses = self.updater.devices()
        targets = []
        for d, e in self.entries.items():
            if e.state in _OPEN:
                self.updater.cancel(d)
                runs = (statuses.get(d) or {}).get("model_sha256") == r.model_sha256
                if not runs:
                    e.state, e.reason = DeviceStep.PENDING, "rollback before it installed"
                    self.store.update_device(e)
                    continue
            if e.state in (*_TOOK, *_OPEN) and e.previous_sha256:
                targets.append(e)
        deadline: dict[str, float] = {}
        for e in targets:
            if not self._rolled_ok(e):
                self.updater.offer(e.device_id, r.id, b"", e.previous_sha256 or "",
                                   "rollback", attempt=1)
            deadline[e.device_id] = time.monotonic() + self.stall_s
        while targets:
            self._results(r)
            for e in list(targets):
                res = self._rolled.get(e.device_id)
                late = time.monotonic() > deadline[e.device_id]
                if res is None and not late:
                    continue
                ok = self._rolled_ok(e)
                e.state = DeviceStep.ROLLED_BACK if ok else DeviceStep.ROLLBACK_FAILED
                e.reason = None if ok else (res.reason if res else "no answer") or "failed"
                self.store.update_device(e, self._event(
                    r, "rollback", "back on its previous model" if ok else e.reason,
                    e.device_id, previous_sha256=e.previous_sha256))
                targets.remove(e)
            if targets:
                self._tick(r, cancel, rolling_back=True)
        counts = {k.value: v for k, v in self.store.counts(r.id).items() if v}
        self._state(r, RolloutState.ROLLED_BACK, f"rolled back: {counts}", "rollback",
                    figures={"counts": counts}, clear_request=True)

    def _rolled_ok(self, e: DeviceEntry) -> bool:
        res = self._rolled.get(e.device_id)
        return res is not None and res.outcome == "installed" and \
            res.sha256 == e.previous_sha256 and res.model_sha256 == e.previous_sha256

