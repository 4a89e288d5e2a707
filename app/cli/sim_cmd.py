"""``tinyops sim``: run a virtual board until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from device_drivers.virtual.faults import FAULT_HELP, parse_faults
from device_drivers.virtual.profiles import DEFAULT_PROFILE, PROFILES

AFTER_UPDATE = ("drift", "slow", "silent", "crash")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sim", help="run a virtual board (SMP server with live inference) on a pty or TCP port",
        description="Start a virtual board that speaks SMP and the TinyOps runtime protocol on "
                    "a pseudo-terminal (or a TCP port), runs models in the TFLM interpreter and "
                    "streams live telemetry. Connect with e.g. `tinyops monitor --port PORT`.")
    p.add_argument("--board", default="virtual", metavar="ID",
                   help="registry board to impersonate (its flash/RAM limits apply)")
    p.add_argument("--tcp", type=int, metavar="PORT", default=None,
                   help="listen on 127.0.0.1:PORT instead of a pty (0 = any free port); "
                        "the port is socket://127.0.0.1:PORT")
    p.add_argument("--state", metavar="DIR", default=None,
                   help="directory that keeps the board's flash (files, images, loaded model) "
                        "across restarts (default: a temporary one)")
    p.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE",
                   help=f"inject a fault, repeatable: {FAULT_HELP}")
    p.add_argument("--model", metavar="FILE", default=None,
                   help="a .tflite model to load at start (default: the bundled vibration model "
                        "on a fresh board, else the one in --state)")
    p.add_argument("--profile", choices=sorted(PROFILES), default=DEFAULT_PROFILE,
                   help="SMP server configuration to imitate: " + "; ".join(
                       f"{name}: {prof.summary}" for name, prof in PROFILES.items())
                   + f" (default: {DEFAULT_PROFILE})")
    p.add_argument("--transport", choices=["console", "raw"], default="console",
                   help="SMP transport: console framing with telemetry beside it (default), "
                        "or Zephyr's raw (unencoded) UART transport: bare SMP, no text")
    p.add_argument("--serial", metavar="SN", default=None,
                   help="the board's identity (its USB serial number, were it hardware; "
                        "default: kept in --state, else a new random one)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic sensor signal")
    p.add_argument("--mqtt", metavar="URL", default=None,
                   help="also publish telemetry and status to this MQTT broker "
                        "(mqtt://host:port; topics in resources/protocol/fleet_mqtt.md)")
    p.add_argument("--device-id", metavar="ID", default=None,
                   help="the board's id in the fleet (with --mqtt; default: sim-<pid>)")
    p.add_argument("--fleet", default="default", help="fleet name (topic level; default: default)")
    p.add_argument("--condition-mix", metavar="W,W,W", default=None,
                   help="machine condition weights normal,imbalance,bearing_fault, drawn anew "
                        "every 0.05 s (1,1,1: steady, like the model's evaluation data)")
    p.add_argument("--drift", action="store_true",
                   help="the machine drifts: mostly bearing faults (condition mix 0.1,0.1,0.8)")
    p.add_argument("--after-update", choices=AFTER_UPDATE, default=None,
                   help="test option (rollout tests): misbehave once a model update came over "
                        "MQTT: drift (the machine mostly fails), slow (reported latency +50 %%), "
                        "silent (publishes nothing more), crash (the board stops, exit 1)")
    p.add_argument("--json", action="store_true",
                   help='first stdout line is {"port": ..., "board": ..., "pid": ..., '
                        '"serial": ..., "virtual": true}')
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from device_drivers.virtual.board import VirtualBoard

    faults = parse_faults(args.fault)
    if args.mqtt:  # bad input is refused before the board starts
        from fleet_ops.fleet import mqtt

        mqtt.parse_url(args.mqtt)
        mqtt.check_name(args.fleet, "fleet name")
        if args.device_id is not None:
            mqtt.check_name(args.device_id)
    board = VirtualBoard(board=args.board, state_dir=args.state, faults=faults,
                         tcp_port=args.tcp, model=args.model, seed=args.seed,
                         profile=args.profile, smp_transport=args.transport,
                         serial=args.serial)
    # A signal handler must not touch locks (Event.set could deadlock against the main
    # thread's own wait): it only flips a flag that the main loop polls.
    stop = {"requested": False}

    def on_sigterm(_signum: int, _frame: object) -> None:
        stop["requested"] = True

    previous = signal.getsignal(signal.SIGTERM)
    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, on_sigterm)
    mix = _mix(args)
    port = board.start()
    publisher = None
    try:
        if mix is not None:
            from device_drivers.virtual.publish import set_mix

            set_mix(board, mix, args.seed)
        if args.mqtt:
            publisher = _publish(board, args)
        info = board.announcement()
        if args.json:
            print(json.dumps({"port": port, "board": info["board"], "pid": info["pid"],
                              "virtual": True, "started": info["started"],
                              "serial": board.serial,
                              "faults": faults.active, "profile": board.profile.name,
                              "model_sha256": board.loaded_model_sha256,
                              "mqtt": publisher.telemetry_topic if publisher else None,
                              "device_id": publisher.device_id if publisher else None}),
                  flush=True)
        else:
            sha = board.loaded_model_sha256
            print(f"virtual board '{board.board_id}' ({board.limits.name}) on {port}, "
                  f"serial {board.serial}")
            print(f"  model: {sha[:12] + '…' if sha else 'none'}   "
                  f"faults: {', '.join(faults.active) or 'none'}   "
                  f"profile: {board.profile.name}")
            print(f"  try:   tinyops monitor --port {port}      (Ctrl-C stops the board)",
                  flush=True)
        while not stop["requested"]:
            time.sleep(0.2)
            if not board.running:
                return 1
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
        if publisher is not None:
            publisher.handler.stop()
            publisher.close()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        if not args.json:
            print("virtual board stopped", file=sys.stderr)
    return 0


def _mix(args: argparse.Namespace) -> tuple[float, ...] | None:
    from device_drivers.virtual.publish import DRIFT_MIX, parse_mix

    if args.drift:
        return DRIFT_MIX
    return parse_mix(args.condition_mix) if args.condition_mix else None


def _publish(board: Any, args: argparse.Namespace) -> Any:
    """The board's fleet connection: telemetry and status out, model updates in
    (``fleet_ops.rollout.agent.UpdateAgent`` over the board: ``SimTarget``)."""
    import os
    from pathlib import Path

    from device_drivers.virtual.publish import attach
    from fleet_ops.fleet.publisher import FleetPublisher
    from fleet_ops.rollout.agent import UpdateAgent
    from fleet_ops.rollout.targets import SimTarget

    box: dict[str, Any] = {}
    latency = {"scale": 1.0}

    def publish(topic: str, payload: bytes, qos: int, retain: bool) -> Any:
        return box["pub"].publish(topic, payload, qos, retain)  # KeyError: not yet, retried

    def on_status(fields: dict[str, Any]) -> None:
        if "pub" in box:
            box["pub"].status(**fields)

    device_id = args.device_id or f"sim-{os.getpid()}"
    agent = UpdateAgent(args.fleet, device_id, SimTarget(board), publish, on_status=on_status,
                        partial_dir=Path(args.state) / "update" if args.state else None)
    publisher = FleetPublisher(args.mqtt, device_id, fleet=args.fleet,
                               board=getattr(board, "board_id", None),
                               firmware="tinyops-virtual",
                               model_sha256=getattr(board, "loaded_model_sha256", None),
                               handler=agent, extra=agent.status_fields())
    box["pub"] = publisher

    def transform(line: bytes) -> bytes:
        if latency["scale"] == 1.0 or b"latency_us" not in line:
            return line
        try:
            rec = json.loads(line)
            rec["latency_us"] = int(rec["latency_us"] * latency["scale"])
        except (ValueError, KeyError, TypeError):
            return line
        return (json.dumps(rec) + "\n").encode()

    def misbehave(result: dict[str, Any]) -> None:
        if result["outcome"] != "installed" or result["action"] != "install":
            return
        what = args.after_update
        print(f"update {result['sha256'][:12]} installed" + (f"; now {what}" if what else ""),
              file=sys.stderr, flush=True)
        if what == "drift":
            from device_drivers.virtual.publish import DRIFT_MIX, set_mix

            set_mix(board, DRIFT_MIX, args.seed)
        elif what == "slow":
            latency["scale"] = 1.5
        elif what == "silent":
            publisher.muted = True
        elif what == "crash":
            board.stop()

    agent.installed_callbacks.append(misbehave)
    attach(board, publisher, transform)
    agent.start_ticker()
    return publisher
