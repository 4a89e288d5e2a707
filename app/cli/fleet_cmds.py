"""``tinyops fleet`` (summarise a fleet from MQTT) and ``tinyops bridge`` (forward a USB
board's telemetry to MQTT). Topics: ``resources/protocol/fleet_mqtt.md``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from device_drivers.paths import resources_dir

EXAMPLE_CARD = Path("examples") / "vibration" / "model_int8.tflite.card.json"


def register(sub: Any) -> None:
    fl = sub.add_parser("fleet", help="summarise the devices publishing to an MQTT broker")
    fl.add_argument("--mqtt", required=True, metavar="URL", help="broker, mqtt://host:port")
    fl.add_argument("--fleet", default="default", help="fleet name (default: default)")
    fl.add_argument("--duration", type=float, default=10.0, metavar="S",
                    help="listen this long, then print the summary (default: 10)")
    fl.add_argument("--card", action="append", default=[], metavar="FILE.card.json",
                    help="model card(s) with the drift baseline, matched by model sha256 "
                         "(repeatable; the bundled example's card is always read)")
    from device_drivers.fleet.drift import DEFAULT_THRESHOLD, DEFAULT_WINDOW

    fl.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                    help=f"drift window, messages (default {DEFAULT_WINDOW})")
    fl.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help="drift alert above this Jensen-Shannon distance "
                         f"(0-1; default {DEFAULT_THRESHOLD})")
    fl.add_argument("--json", action="store_true", help="print one JSON object")
    fl.set_defaults(func=cmd_fleet)

    br = sub.add_parser("bridge", help="forward a USB board's telemetry to an MQTT broker")
    br.add_argument("--port", required=True, help="the board's serial port")
    br.add_argument("--mqtt", required=True, metavar="URL", help="broker, mqtt://host:port")
    br.add_argument("--device-id", default=None, help="id in the fleet (default: from the port)")
    br.add_argument("--fleet", default="default", help="fleet name (default: default)")
    br.add_argument("--duration", type=float, default=None, metavar="S",
                    help="stop after S seconds (default: until Ctrl-C)")
    br.add_argument("--json", action="store_true", help="print one JSON object at the end")
    br.set_defaults(func=cmd_bridge)


def _cards(extra: list[str]) -> list[str]:
    bundled = resources_dir() / EXAMPLE_CARD
    return [str(bundled), *extra] if bundled.is_file() else list(extra)


def cmd_fleet(args: argparse.Namespace) -> int:
    from device_drivers.errors import InputError
    from device_drivers.fleet.monitor import FleetMonitor, load_baselines

    if args.duration < 0 or args.window < 1 or not 0 < args.threshold < 1:
        raise InputError("--duration must be >= 0, --window >= 1, --threshold in (0, 1)",
                         "e.g. --duration 10 --window 200 --threshold 0.25")
    monitor = FleetMonitor(args.mqtt, fleet=args.fleet, baselines=load_baselines(
        _cards(args.card)), window=args.window, threshold=args.threshold)
    try:
        monitor.run(args.duration)
    finally:
        monitor.close()
    summary = monitor.summary()
    summary["alert_records"] = monitor.write_alert_records()
    if args.json:
        print(json.dumps({"ok": True, **summary}))
        return 0
    if not summary["devices"]:
        print(f"no devices in fleet '{args.fleet}' within {args.duration:g} s")
    for d in summary["devices"]:
        top = ", ".join(f"{k} {v:.0%}" for k, v in d["class_distribution"].items())
        drift = "-" if d["drift_score"] is None else f"{d['drift_score']:.3f}"
        p50 = "-" if d["latency_us_p50"] is None else f"{d['latency_us_p50']:.0f}"
        p95 = "-" if d["latency_us_p95"] is None else f"{d['latency_us_p95']:.0f}"
        sha = (d['model_sha256'] or '-')[:12]
        print(f"{d['device_id']:20s} {d['state'] or '?':8s} model {sha} "
              f"msgs {d['messages']:6d}  latency p50/p95 {p50}/{p95} µs  drift {drift}"
              f"{'  ALERT' if d['alerts'] else ''}  [{top}]")
    if summary["malformed"]:
        print(f"{summary['malformed']} malformed messages dropped")
    return 0


def cmd_bridge(args: argparse.Namespace) -> int:
    import re

    from device_drivers.fleet.publisher import FleetPublisher
    from device_drivers.link.session import DeviceSession

    device_id = args.device_id or re.sub(r"[^A-Za-z0-9._-]", "-", args.port).strip("-._")[:64]
    forwarded = 0
    with DeviceSession.open(args.port) as session:
        sha = board = firmware = None
        try:
            info = session.model_info()
        except Exception:  # a board without the runtime still streams telemetry text
            info = None
        if info is not None:
            raw = getattr(info, "sha256", None)
            sha = raw.hex() if isinstance(raw, bytes) else raw
            board, firmware = getattr(info, "board", None), getattr(info, "runtime", None)
        publisher = FleetPublisher(args.mqtt, device_id or "bridge", fleet=args.fleet,
                                   board=board, firmware=firmware, model_sha256=sha)
        from app.cli.identity_watch import IdentityWatch

        watch = IdentityWatch(session, args.port)  # another board ends the bridge

        def forward(batches: list[Any]) -> int:
            n = 0
            for batch in batches:
                for line in batch.lines:
                    text = line.strip()
                    if text.startswith("{") and _json_object(text):
                        publisher.telemetry(text)
                        n += 1
            return n

        try:
            deadline = None if args.duration is None else time.monotonic() + args.duration
            while deadline is None or time.monotonic() < deadline:
                time.sleep(0.05)
                forwarded += forward(watch.add(session.telemetry()))
            forwarded += forward(watch.flush())
        except KeyboardInterrupt:
            pass
        finally:
            publisher.close()
    if args.json:
        print(json.dumps({"ok": True, "device_id": device_id, "forwarded": forwarded,
                          "topic": publisher.telemetry_topic}))
    else:
        print(f"forwarded {forwarded} telemetry messages to {publisher.telemetry_topic}")
    return 0


def _json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
