"""``tinyops rollout``: staged model rollouts to a fleet (``docs/rollouts.md``).

``create`` stores the plan and runs it in the foreground (``--no-start``: stored only);
``resume ID`` runs it again (it takes the hold: a second orchestrator says who holds it and
exits 1). ``pause``/``abort``/``rollback`` ask the running holder (it acts within a second);
with no holder, ``pause``/``abort`` change the state at once and ``rollback`` runs the
rollback here. Ctrl-C leaves a rollout resumable (exit 130). ``status``, ``list``, ``retry``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from app.cli.fleet_cmds import MQTT_HELP
from device_drivers.errors import InputError
from fleet_ops.rollout.plan import DEFAULT_RULES

ACTIONS = ("pause", "resume", "abort", "rollback")


def register(sub: Any) -> None:
    ro = sub.add_parser("rollout", help="staged model rollouts to a fleet over MQTT")
    rs = ro.add_subparsers(dest="rollout_command", metavar="ACTION", required=True)
    cr = rs.add_parser("create", help="plan a rollout and run it")
    cr.add_argument("model", help="the .tflite file to roll out")
    cr.add_argument("--fleet", required=True, help="fleet name")
    cr.add_argument("--mqtt", required=True, metavar="URL", help=MQTT_HELP)
    who = cr.add_mutually_exclusive_group()
    who.add_argument("--cohort", metavar="NAME",
                     help="devices whose status names this cohort or board, or whose id "
                          "matches it as a pattern (lab-*); default: every device heard")
    who.add_argument("--devices", metavar="ID,…", help="exactly these devices")
    cr.add_argument("--steps", default="5,25,50,100", help="cumulative percents (5,25,50,100)")
    cr.add_argument("--health-window", type=float, default=60.0, metavar="S",
                    help="seconds of health data after each step (default 60)")
    cr.add_argument("--halt-on", default=",".join(DEFAULT_RULES), metavar="RULES",
                    help="rules that halt it: drift>0.2, drifting>10%%, confidence<-10%%, "
                         "latency_p95>+20%%, errors>0, resets>0, failed>2%%, silent>0 "
                         "(default: %(default)s)")
    cr.add_argument("--discover", type=float, default=3.0, metavar="S",
                    help="seconds to collect the fleet's statuses (default 3)")
    cr.add_argument("--stall", type=float, default=30.0, metavar="S",
                    help="an offered device silent this long has failed that attempt")
    cr.add_argument("--no-start", action="store_true", help="store the plan only")
    cr.add_argument("--json", action="store_true", help="print one JSON object")
    cr.set_defaults(func=cmd_create)
    for name in ACTIONS:
        p = rs.add_parser(name, help=f"{name} a rollout")
        p.add_argument("id", help="rollout id (a unique prefix will do)")
        if name in ("resume", "rollback"):
            p.add_argument("--mqtt", metavar="URL", help="broker (default: the rollout's)")
            p.add_argument("--stall", type=float, default=30.0, metavar="S")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(func=cmd_action, action=name)
    st = rs.add_parser("status", help="a rollout's state, devices and last events")
    st.add_argument("id")
    st.add_argument("--events", type=int, default=10, metavar="N")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)
    ls = rs.add_parser("list", help="every rollout")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    rt = rs.add_parser("retry", help="let a FAILED device be tried again (a person's call)")
    rt.add_argument("id")
    rt.add_argument("--device", required=True)
    rt.add_argument("--json", action="store_true")
    rt.set_defaults(func=cmd_retry)


def _store() -> Any:
    from fleet_ops.rollout.store import RolloutStore

    return RolloutStore.open()


def _progress(store: Any, rid: str, as_json: bool) -> Any:
    """Events to stderr (a line each); on a terminal also a live line below them: the step
    and the devices per state."""
    tty = sys.stderr.isatty() and not as_json

    def on_event(ev: Any) -> None:
        if as_json or (ev.kind == "sent" and tty):
            return
        line = f"{ev.time[11:19]} {ev.kind:<12} {ev.device_id or ''} {ev.why}".rstrip()
        if not tty:
            print(line[:200], file=sys.stderr, flush=True)
            return
        r = store.get(rid)
        counts = ", ".join(f"{k.value} {n}" for k, n in store.counts(rid).items() if n)
        step = min(r.step_index, len(r.steps) - 1)
        live = f"[{r.state.value} · step {step + 1}/{len(r.steps)} ({r.steps[step]} %) · {counts}]"
        print(f"\r\x1b[K{line[:200]}\n{live[:200]}", end="", file=sys.stderr, flush=True)

    return on_event


def _run(store: Any, rid: str, url: str, stall: float, as_json: bool) -> int:
    from fleet_ops.fleet.monitor import FleetMonitor
    from fleet_ops.rollout.orchestrator import Orchestrator
    from fleet_ops.rollout.preflight import model_facts
    from fleet_ops.rollout.transfer import MqttUpdater

    r = store.get(rid)
    model = model_facts(r.model_path or "")
    baselines = {model.sha256: model.baseline} if model.baseline else {}
    updater = MqttUpdater(url, r.fleet)
    monitor = FleetMonitor(url, fleet=r.fleet, baselines=baselines, record_alerts=False)
    cancel = threading.Event()
    orch = Orchestrator(store, updater, monitor, stall_s=stall,
                        on_event=_progress(store, rid, as_json))
    outcome: dict[str, Any] = {}

    def go() -> None:
        try:
            outcome["rollout"] = orch.run(rid, cancel)
        except BaseException as exc:  # raised again in the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=go, name="rollout", daemon=True)
    worker.start()
    interrupted = False
    try:
        while worker.is_alive():
            worker.join(0.2)
    except KeyboardInterrupt:
        interrupted = True
        cancel.set()
        worker.join(30)
    finally:
        updater.close()
        monitor.close()
    if sys.stderr.isatty() and not as_json:
        print("\r\x1b[K", end="", file=sys.stderr, flush=True)  # the live line goes
    if "error" in outcome:
        raise outcome["error"]
    r = store.get(rid)
    if interrupted or cancel.is_set():
        msg = f"stopped; the rollout is resumable: tinyops rollout resume {r.id}"
        print(json.dumps({"ok": False, "cancelled": True, "id": r.id, "state": r.state.value,
                          "hint": msg}) if as_json else msg, file=sys.stdout if as_json
              else sys.stderr)
        return 130
    _print_status(store, r, as_json, events=5)
    return 0 if r.state.value in ("completed", "rolled_back") else 1


def cmd_create(args: argparse.Namespace) -> int:
    from fleet_ops.rollout.create import create_rollout, select_devices
    from fleet_ops.rollout.transfer import MqttUpdater

    store = _store()
    if args.devices:
        devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    else:
        updater = MqttUpdater(args.mqtt, args.fleet)
        try:
            updater.subscribed.wait(10)
            time.sleep(max(0.0, args.discover))
            devices = select_devices(updater.devices(), args.cohort)
        finally:
            updater.close()
    r = create_rollout(store, args.model, fleet=args.fleet, mqtt_url=args.mqtt,
                       devices=devices, steps=args.steps, health_window_s=args.health_window,
                       rules=args.halt_on, cohort=args.cohort, explicit=bool(args.devices))
    if not args.json:
        print(f"rollout {r.id}: {r.model_name} to {len(devices)} devices of fleet {r.fleet}, "
              f"steps {','.join(map(str, r.steps))} %", file=sys.stderr)
    if args.no_start:
        _print_status(store, r, args.json, events=1)
        return 0
    return _run(store, r.id, args.mqtt, args.stall, args.json)


def cmd_action(args: argparse.Namespace) -> int:
    from fleet_ops.rollout.plan import RolloutState

    store = _store()
    r = store.get(args.id)
    holder = store.holder(r.id)
    if holder is None and args.action in ("resume", "rollback"):
        if args.action == "rollback":
            store.request(r.id, "rollback")
        return _run(store, r.id, args.mqtt or r.mqtt_url, args.stall, args.json)
    if holder is not None:
        if args.action == "resume" and r.state != RolloutState.PAUSED:
            from fleet_ops.rollout.store import RolloutHeld

            raise RolloutHeld(r.id, holder)
        store.request(r.id, args.action)
        said = f"asked {holder} to {args.action} rollout {r.id}"
    elif args.action == "pause" and r.state in (RolloutState.CREATED, RolloutState.RUNNING):
        store.set_state(r.id, RolloutState.PAUSED, "paused (no orchestrator running)",
                        kind="paused")
        said = f"rollout {r.id} paused"
    elif args.action == "abort" and not r.state.finished:
        store.set_state(r.id, RolloutState.ABORTED, "aborted (no orchestrator running)",
                        kind="aborted", clear_request=True)
        said = f"rollout {r.id} aborted"
    else:
        raise InputError(f"rollout {r.id} is {r.state.value}: nothing to {args.action}",
                         "`tinyops rollout status ID` shows where it is")
    if args.json:
        print(json.dumps({"ok": True, "id": r.id, "action": args.action, "holder": holder}))
    else:
        print(said)
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from fleet_ops.rollout.plan import DeviceStep, Event, RolloutState

    store = _store()
    r = store.get(args.id)
    entry = next((e for e in store.devices(r.id) if e.device_id == args.device), None)
    if entry is None or entry.state != DeviceStep.FAILED:
        raise InputError(f"{args.device} is not a FAILED device of rollout {r.id}",
                         "`tinyops rollout status ID` lists the failed devices")
    # one more attempt, numbered on (the device tells attempts apart by their number)
    entry.state, entry.reason = DeviceStep.PENDING, None
    store.update_device(entry, Event(r.id, "retry", "a person asked for one more try",
                                     args.device, {"attempts": entry.attempts}))
    if r.state == RolloutState.COMPLETED:
        store.set_state(r.id, RolloutState.PAUSED, f"reopened to retry {args.device}",
                        kind="retry", step_index=len(r.steps) - 1)
    msg = f"{args.device} will be tried again: tinyops rollout resume {r.id}"
    print(json.dumps({"ok": True, "id": r.id, "device": args.device}) if args.json else msg)
    return 0


def _view(store: Any, r: Any, events: int) -> dict[str, Any]:
    counts = {k.value: v for k, v in store.counts(r.id).items() if v}
    devices = store.devices(r.id)
    return {**r.to_dict(), "counts": counts, "holder": store.holder(r.id),
            "bytes_sent": sum(e.bytes_sent for e in devices),
            "failed": [e.to_dict() for e in devices if e.state.value in
                       ("failed", "skipped", "rollback_failed")][:100],
            "events": [e.to_dict() for e in store.events(r.id, events)]}


def _print_status(store: Any, r: Any, as_json: bool, events: int) -> None:
    v = _view(store, r, events)
    if as_json:
        print(json.dumps({"ok": True, **v}, default=str))
        return
    step = min(r.step_index, len(r.steps) - 1)
    print(f"rollout {r.id}  {r.state.value}  step {step + 1}/{len(r.steps)} "
          f"({r.steps[step]} %)  {r.model_name} → fleet {r.fleet}")
    print("  devices: " + ", ".join(f"{k} {n}" for k, n in v["counts"].items()))
    if r.halt_reason:
        print(f"  halted: {r.halt_reason}")
    if v["holder"]:
        print(f"  held by {v['holder']}")
    for e in v["failed"][:20]:
        print(f"  {e['state']:<8} {e['device_id']}: {e['reason']}")
    for ev in v["events"]:
        print(f"  {ev['time'][:19]} {ev['kind']:<12} {ev['device_id'] or ''} {ev['why']}"[:160])


def cmd_status(args: argparse.Namespace) -> int:
    store = _store()
    _print_status(store, store.get(args.id), args.json, args.events)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    store = _store()
    rows = [{"id": r.id, "state": r.state.value, "model": r.model_name, "fleet": r.fleet,
             "step": r.step_index, "steps": r.steps, "created": r.created,
             "halt_reason": r.halt_reason} for r in store.list()]
    if args.json:
        print(json.dumps({"ok": True, "rollouts": rows}))
    else:
        for row in rows:
            print(f"{row['id']}  {row['state']:<12} {row['model']} → {row['fleet']}  "
                  f"{row['created'][:19]}")
    return 0
