"""The rollout loop: :class:`Orchestrator` ``.run(rollout_id, cancel)``.

For each step from the stored one: preflight every device of the step (from its retained
status), offer the model to those that pass (``MqttUpdater``; the decision is committed
first), take their results (an ``installed`` counts only for the offered sha256 and a device
that then runs it; anything else for this rollout is a ``forged`` event), retry a failed
device once and then mark it FAILED (never retried by itself), wait the health window, and
evaluate the gates on the devices that took it against the rest. A breach halts the rollout
naming the rule, the devices and the figures. Requests written by other clients
(``store.request``: pause, resume, abort, rollback) are read every :data:`POLL_S`.

Restarted (a killed orchestrator, a ``cancel``): the store says where each device is; the
retained results on the broker say what happened meanwhile (read before anything is offered),
so a device that installed is never offered the model again, and one that was receiving is
offered the same attempt again (it resumes at the offset it has).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from fleet_ops.rollout.gates import aggregate, evaluate, parse_rules
from fleet_ops.rollout.health import HealthView
from fleet_ops.rollout.plan import (
    MAX_ATTEMPTS,
    DeviceEntry,
    DeviceStep,
    Event,
    Rollout,
    RolloutState,
)
from fleet_ops.rollout.preflight import ModelFacts, check_device, model_facts
from fleet_ops.rollout.rollback import RollbackMixin
from fleet_ops.rollout.store import RolloutStore

log = logging.getLogger(__name__)

POLL_S = 0.2
STALL_S = 30.0
"""An offered device that pulls nothing for this long has failed that attempt."""
SETTLE_S = 3.0
"""After subscribing: time for the broker's retained statuses and results to arrive."""
_OPEN = (DeviceStep.OFFERED, DeviceStep.TRANSFERRING)
_TOOK = (DeviceStep.INSTALLED, DeviceStep.HEALTHY)


class _Stop(Exception):
    """Leave the loop; the rollout's state says why (or it stays resumable)."""


class _Rollback(Exception):
    pass


class Orchestrator(RollbackMixin):
    def __init__(self, store: RolloutStore, updater: Any, monitor: Any, *,
                 stall_s: float = STALL_S, settle_s: float = SETTLE_S,
                 holder: str | None = None,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.store, self.updater = store, updater
        self.health = HealthView(monitor)
        self.stall_s, self.settle_s, self.holder = stall_s, settle_s, holder
        self.on_event = on_event
        self.results: queue.Queue[Any] = queue.Queue()
        updater.on_result(self.results.put)
        self.entries: dict[str, DeviceEntry] = {}
        self.model: ModelFacts | None = None
        self._base_bytes: dict[str, int] = {}
        self._offered: dict[str, list[float]] = {}  # device: [progress time, bytes seen]
        self._rolled: dict[str, Any] = {}
        self._next_poll = 0.0

    # ------------------------------------------------------------------ entry point
    def run(self, rollout_id: str, cancel: threading.Event | None = None) -> Rollout:
        """Run (or resume) a rollout until it completes, halts, is aborted or rolled back,
        or ``cancel`` is set (it then stays resumable). ``RolloutHeld`` if another holds it."""
        cancel = cancel or threading.Event()
        rid = self.store.get(rollout_id).id
        with self.store.hold(rid, self.holder) as self._hold:
            r = self.store.get(rid)
            rollback = r.requested == "rollback" and r.state in (
                RolloutState.COMPLETED, RolloutState.ABORTED)
            if r.state.finished and not rollback:
                return r
            try:
                self._start(r, cancel)
                self._steps(r, cancel)
            except _Rollback:
                self._rollback(r, cancel)
            except _Stop:
                pass
        return self.store.get(rid)

    def _event(self, r: Rollout, kind: str, why: str, device: str | None = None,
               **figures: Any) -> Event:
        ev = Event(r.id, kind, why, device, figures)
        if self.on_event is not None:
            self.on_event(ev)
        return ev

    def _state(self, r: Rollout, state: RolloutState, why: str, kind: str | None = None,
               **kw: Any) -> None:
        figures = kw.pop("figures", {})
        self.store.set_state(r.id, state, why, figures, kind=kind, **kw)
        r.state = state
        if kw.get("step_index") is not None:
            r.step_index = kw["step_index"]
        if self.on_event is not None:
            self.on_event(Event(r.id, kind or state.value, why, None, figures))

    def _start(self, r: Rollout, cancel: threading.Event) -> None:
        self.model = model_facts(r.model_path or "")
        if self.model.sha256 != r.model_sha256:
            self._state(r, RolloutState.HALTED, "the model file changed since the rollout was "
                        "created", "halted", halt_reason="model file changed")
            raise _Stop
        self.entries = {e.device_id: e for e in self.store.devices(r.id)}
        self._base_bytes = {d: e.bytes_sent for d, e in self.entries.items()}
        self.updater.subscribed.wait(15)
        deadline = time.monotonic() + self.settle_s
        while time.monotonic() < deadline and not cancel.is_set():
            if set(self.entries) <= set(self.updater.devices()):
                break
            time.sleep(POLL_S)
        time.sleep(min(0.5, self.settle_s))  # retained results come right after statuses
        self._results(r)
        if r.requested == "rollback" or r.state == RolloutState.ROLLING_BACK:
            raise _Rollback
        if r.requested in ("pause", "resume"):
            self.store.clear_request(r.id)
            r.requested = None
        if r.requested == "abort":
            self._abort(r)
        if r.state in (RolloutState.CREATED, RolloutState.PAUSED, RolloutState.HALTED):
            why = {RolloutState.CREATED: "started",
                   RolloutState.PAUSED: "resumed after a pause",
                   RolloutState.HALTED: "resumed by a person past the halt "
                                        f"({r.halt_reason})"}[r.state]
            step = r.step_index + 1 if r.state == RolloutState.HALTED else r.step_index
            self._state(r, RolloutState.RUNNING, why,
                        "started" if r.state == RolloutState.CREATED else "resumed",
                        step_index=step)
        elif r.state == RolloutState.RUNNING:
            self.store.add_event(self._event(r, "resumed", "resumed after a stop"))

    # ------------------------------------------------------------------ the steps
    def _steps(self, r: Rollout, cancel: threading.Event) -> None:
        rules = parse_rules(r.rules)
        baseline = self._baseline(r)
        for i in range(r.step_index, len(r.steps)):
            self._state(r, RolloutState.RUNNING, f"step {i + 1}/{len(r.steps)}: "
                        f"{r.steps[i]} %", "step_started", step_index=i,
                        figures={"baseline": baseline, "step": i})
            self._send(r, i, cancel)
            took, rest, window_start = self._window(r, i, cancel)
            h_took = self.health.figures(took, since=window_start, failed=[
                d for d in took if self.entries[d].state == DeviceStep.FAILED])
            h_rest = self.health.figures(rest)
            breaches = evaluate(rules, h_took, h_rest, rest_figures=baseline)
            figures = {"took": aggregate(h_took), "rest": aggregate(h_rest),
                       "devices": len(h_took), "step": i,
                       "per_device": {h.device_id: [h.drift, h.confidence, h.latency_p95,
                                                    h.silent] for h in h_took[:200]}}
            if breaches:
                figures["breaches"] = [b.to_dict() for b in breaches]
                why = "; ".join(b.describe() for b in breaches)
                self._state(r, RolloutState.HALTED, why, "halted",
                            halt_reason=breaches[0].describe(), figures=figures)
                raise _Stop
            passed = [e for e in self.entries.values()
                      if e.step_index <= i and e.state == DeviceStep.INSTALLED]
            for e in passed:
                e.state = DeviceStep.HEALTHY
            self.store.update_devices(passed, [])
            self._state(r, RolloutState.RUNNING, f"step {i + 1} passed its gate",
                        "gate_passed", step_index=i + 1, figures=figures)
        counts = {k.value: v for k, v in self.store.counts(r.id).items() if v}
        self._state(r, RolloutState.COMPLETED, f"done: {counts}", "completed",
                    figures={"counts": counts}, clear_request=True)

    def _baseline(self, r: Rollout) -> dict[str, Any]:
        """The fleet's figures before the rollout (kept in the first step's event)."""
        for ev in self.store.events(r.id):
            if ev.kind == "step_started" and ev.figures.get("baseline"):
                return dict(ev.figures["baseline"])
        return aggregate(self.health.figures(list(self.entries)))

    def _send(self, r: Rollout, i: int, cancel: threading.Event) -> None:
        assert self.model is not None
        statuses: dict[str, dict[str, Any]] = self.updater.devices()
        garbage: dict[str, int] = getattr(self.updater, "bad_statuses", dict)()
        decided, events, to_offer = [], [], []
        for e in self.entries.values():
            if e.step_index > i or e.state not in (DeviceStep.PENDING, *_OPEN):
                continue
            if e.state == DeviceStep.PENDING:
                status = statuses.get(e.device_id)
                reasons = check_device(self.model, e.device_id, status) if status or not \
                    garbage.get(e.device_id) else [f"its status is garbage (not a JSON object; "
                                                   f"{garbage[e.device_id]} such messages)"]
                if reasons:
                    e.state, e.reason = DeviceStep.SKIPPED, "; ".join(reasons)
                    decided.append(e)
                    events.append(self._event(r, "skipped", e.reason, e.device_id))
                    continue
                assert status is not None  # check_device gave a reason for a missing one
                e.previous_sha256 = status.get("model_sha256")
                if e.previous_sha256 == self.model.sha256:
                    e.state, e.reason = DeviceStep.INSTALLED, "it already ran this model"
                    decided.append(e)
                    events.append(self._event(r, "installed", e.reason, e.device_id))
                    continue
                e.attempts += 1
                e.state = DeviceStep.OFFERED
                events.append(self._event(r, "sent", f"offered (attempt {e.attempts})",
                                          e.device_id))
            decided.append(e)
            to_offer.append(e)
        self.store.update_devices(decided, events)  # decided before acted on
        for e in to_offer:
            self._offer(r, e)
        while any(e.step_index <= i and e.state in _OPEN for e in self.entries.values()):
            self._tick(r, cancel)

    def _offer(self, r: Rollout, e: DeviceEntry) -> None:
        assert self.model is not None
        self.updater.offer(e.device_id, r.id, self.model.data, self.model.sha256, "install",
                           self.model.name, attempt=e.attempts)
        self._offered[e.device_id] = [time.monotonic(), self.updater.bytes_sent(e.device_id)]

    def _bytes(self, device: str) -> int:
        sent: int = self.updater.bytes_sent(device)
        return self._base_bytes.get(device, 0) + sent

    def _window(self, r: Rollout, i: int, cancel: threading.Event
                ) -> tuple[list[str], list[str], float]:
        start = time.monotonic()
        while time.monotonic() < start + r.health_window_s:
            self._tick(r, cancel)
        took = [d for d, e in self.entries.items() if e.step_index <= i and
                e.state in (*_TOOK, DeviceStep.FAILED)]
        rest = [d for d, e in self.entries.items() if e.state in
                (DeviceStep.PENDING, DeviceStep.SKIPPED)]
        return took, rest, start

    # ------------------------------------------------------------------ each tick
    def _tick(self, r: Rollout, cancel: threading.Event, rolling_back: bool = False) -> None:
        time.sleep(POLL_S)
        self._hold.check()
        self._results(r)
        if not rolling_back:
            self._stalls(r)
        if cancel.is_set():
            raise _Stop
        if time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + 0.5
        asked = self.store.get(r.id).requested
        if rolling_back or not asked:
            return
        self.store.clear_request(r.id)
        if asked == "rollback":
            raise _Rollback
        if asked == "abort":
            self._abort(r)
        if asked == "pause":
            self._state(r, RolloutState.PAUSED, "paused on request", "paused")
            while True:
                time.sleep(POLL_S)
                self._hold.check()
                self._results(r)
                if cancel.is_set():
                    raise _Stop
                asked = self.store.get(r.id).requested
                if asked in ("abort", "rollback"):
                    self._next_poll = 0.0
                    return self._tick(r, cancel)
                if asked == "resume":
                    self.store.clear_request(r.id)
                    self._state(r, RolloutState.RUNNING, "resumed on request", "resumed")
                    for d in self._offered:  # the pause does not count as a stall
                        self._offered[d][0] = time.monotonic()
                    return None
        return None

    def _abort(self, r: Rollout) -> None:
        for d, e in self.entries.items():
            if e.state in _OPEN:
                self.updater.cancel(d)
        self._state(r, RolloutState.ABORTED, "aborted on request", "aborted",
                    clear_request=True)
        raise _Stop

    def _stalls(self, r: Rollout) -> None:
        now = time.monotonic()
        for d, mark in list(self._offered.items()):
            e = self.entries[d]
            if e.state not in _OPEN:
                self._offered.pop(d, None)
                continue
            sent = self.updater.bytes_sent(d)
            if sent > mark[1]:
                mark[0], mark[1] = now, sent
                if e.state == DeviceStep.OFFERED:
                    e.state, e.bytes_sent = DeviceStep.TRANSFERRING, self._bytes(d)
                    self.store.update_device(e)
            elif now - mark[0] > self.stall_s:
                self._failed(r, e, f"no progress for {self.stall_s:g} s")

    def _failed(self, r: Rollout, e: DeviceEntry, reason: str) -> None:
        e.bytes_sent, e.reason = self._bytes(e.device_id), reason
        if e.attempts >= MAX_ATTEMPTS:
            e.state = DeviceStep.FAILED
            self.store.update_device(e, self._event(
                r, "failed", f"attempt {e.attempts} failed: {reason}; not retried until "
                f"`tinyops rollout retry {r.id} --device {e.device_id}`", e.device_id,
                bytes_sent=e.bytes_sent))
            self.updater.cancel(e.device_id)
            self._offered.pop(e.device_id, None)
            return
        e.attempts += 1
        e.state = DeviceStep.OFFERED
        self.store.update_device(e, self._event(
            r, "sent", f"offered again (attempt {e.attempts}) after: {reason}", e.device_id,
            bytes_sent=e.bytes_sent))
        self._offer(r, e)

    def _results(self, r: Rollout) -> None:
        assert self.model is not None
        while True:
            try:
                res = self.results.get_nowait()
            except queue.Empty:
                return
            e = self.entries.get(res.device_id)
            if e is None or res.rollout != r.id:
                continue
            if res.action == "rollback":
                self._rolled[res.device_id] = res
                continue
            good = res.outcome == "installed" and res.sha256 == self.model.sha256 and \
                res.model_sha256 == self.model.sha256
            if res.outcome == "installed" and not good:
                self.store.add_event(self._event(
                    r, "forged", "an 'installed' report for another model: not counted",
                    e.device_id, sha256=res.sha256, model_sha256=res.model_sha256))
                continue
            if e.state not in _OPEN:
                continue  # known already (a retained report read again)
            if good:
                e.state, e.reason = DeviceStep.INSTALLED, None
                e.bytes_sent = self._bytes(e.device_id)
                e.previous_sha256 = res.previous_sha256 or e.previous_sha256
                self.store.update_device(e, self._event(
                    r, "installed", "installed and running it", e.device_id,
                    bytes_sent=e.bytes_sent, attempt=e.attempts))
            elif e.device_id in self._offered:  # a failure of an offer made by this run
                self._failed(r, e, res.reason or "the device reported a failure")
