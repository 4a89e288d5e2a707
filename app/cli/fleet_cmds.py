"""``tinyops fleet`` (summarise a fleet from MQTT) and ``tinyops bridge`` (forward a USB
board's telemetry to MQTT). Topics: ``resources/protocol/fleet_mqtt.md``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

MQTT_HELP = ("broker: mqtt://[user@]host:port, or mqtts://[user@]host:port[?ca=CA.pem"
             "&cert=CERT.pem&key=KEY.pem] for TLS; the password from $TINYOPS_MQTT_PASSWORD or "
             "?password_file=FILE (resources/protocol/fleet_mqtt.md)")


def register(sub: Any) -> None:
    fl = sub.add_parser("fleet", help="summarise the devices publishing to an MQTT broker")
    fl.add_argument("--mqtt", required=True, metavar="URL", help=MQTT_HELP)
    fl.add_argument("--fleet", default="default", help="fleet name (default: default)")
    fl.add_argument("--duration", type=float, default=10.0, metavar="S",
                    help="listen this long, then print the summary (default: 10)")
    fl.add_argument("--card", action="append", default=[], metavar="FILE.card.json",
                    help="model card(s) with the drift baseline, matched by model sha256 "
                         "(repeatable; the bundled example's card is always read)")
    from fleet_ops.fleet.drift import DEFAULT_THRESHOLD, DEFAULT_WINDOW

    fl.add_argument("--window", type=int, default=DEFAULT_WINDOW,
                    help=f"drift window, messages (default {DEFAULT_WINDOW})")
    fl.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                    help="drift alert above this Jensen-Shannon distance "
                         f"(0-1; default {DEFAULT_THRESHOLD})")
    fl.add_argument("--max-devices", type=int, default=10_000, metavar="N",
                    help="track at most N devices; past it the least recently heard is "
                         "dropped (default 10000)")
    fl.add_argument("--silent-after", type=int, default=3, metavar="PERIODS",
                    help="a device is 'silent' after this many of its reporting periods "
                         "without a message (default 3)")
    fl.add_argument("--json", action="store_true", help="print one JSON object")
    fl.set_defaults(func=cmd_fleet)

    br = sub.add_parser("bridge", help="forward a USB board's telemetry to an MQTT broker "
                        "and flash it when a model update is offered for it",
                        description="Forward the board's telemetry to MQTT. A model update "
                        "offered for --device-id over MQTT (a rollout) is downloaded, "
                        "flashed over SMP the way `tinyops flash` does (verified by the "
                        "device, recorded) and reported; the board keeps its previous model "
                        "for rollback (resources/protocol/fleet_mqtt.md, Model updates).")
    br.add_argument("--port", required=True, help="the board's serial port")
    br.add_argument("--mqtt", required=True, metavar="URL", help=MQTT_HELP)
    br.add_argument("--device-id", default=None, help="id in the fleet (default: from the port)")
    br.add_argument("--fleet", default="default", help="fleet name (default: default)")
    br.add_argument("--duration", type=float, default=None, metavar="S",
                    help="stop after S seconds (default: until Ctrl-C)")
    br.add_argument("--json", action="store_true", help="print one JSON object at the end")
    br.set_defaults(func=cmd_bridge)


def cmd_fleet(args: argparse.Namespace) -> int:
    from device_drivers.errors import InputError
    from fleet_ops.fleet.drift import DEFAULT_THRESHOLD, DEFAULT_WINDOW, card_files
    from fleet_ops.fleet.monitor import FleetMonitor, load_baselines

    if args.duration < 0 or args.window < 1 or not 0 < args.threshold < 1 or \
            args.max_devices < 1 or args.silent_after < 1:
        raise InputError("--duration must be >= 0, --window >= 1, --threshold in (0, 1), "
                         "--max-devices and --silent-after >= 1",
                         f"e.g. --duration 10 --window {DEFAULT_WINDOW} "
                         f"--threshold {DEFAULT_THRESHOLD}")
    monitor = FleetMonitor(args.mqtt, fleet=args.fleet, baselines=load_baselines(
        card_files(args.card)), window=args.window, threshold=args.threshold,
        max_devices=args.max_devices, silent_periods=args.silent_after)
    try:
        monitor.run(args.duration)
    finally:
        monitor.close()
    summary = monitor.summary()
    summary["alert_records"] = monitor.write_alert_records()
    broker = summary["broker"]
    ok = bool(broker["connected"])  # the counts are only complete with the broker there
    if args.json:
        print(json.dumps({"ok": ok, **summary}, allow_nan=False))
        return 0 if ok else 1
    if not ok:
        print(f"broker {broker['url']} unreachable since {broker['unreachable_since']} "
              f"({broker['reason']}); devices shown as unknown, counts incomplete")
    elif broker["reconnects"]:
        print(f"broker {broker['url']} was lost and reconnected {broker['reconnects']} "
              "time(s) during the run")
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
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(summary["malformed_reasons"].items()))
        print(f"{summary['malformed']} malformed messages dropped ({reasons})")
    if summary["dropped_devices"]:
        print(f"{summary['dropped_devices']} devices dropped past --max-devices "
              f"{args.max_devices} (least recently heard first)")
    return 0 if ok else 1


def cmd_bridge(args: argparse.Namespace) -> int:
    import re

    from device_drivers.link.session import DeviceSession
    from fleet_ops.fleet.publisher import FleetPublisher
    from fleet_ops.records.delivery import BackgroundDelivery
    from fleet_ops.records.device_ops import record_flash
    from fleet_ops.rollout.agent import UpdateAgent
    from fleet_ops.rollout.targets import BoardTarget

    device_id = args.device_id or re.sub(r"[^A-Za-z0-9._-]", "-", args.port).strip("-._")[:64]
    forwarded = 0
    delivery = BackgroundDelivery().start()  # records waiting on this station go meanwhile
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
        box: dict[str, Any] = {}
        from app.cli.identity_watch import IdentityWatch

        watch = IdentityWatch(session, args.port)  # another board ends the bridge; its own
        target = BoardTarget(session, args.port, recorder=record_flash,  # updates do not
                             on_load=watch.expect_model)
        agent = UpdateAgent(args.fleet, device_id or "bridge", target,
                            lambda t, p, q, r: box["pub"].publish(t, p, q, r),
                            on_status=lambda f: box["pub"].status(**f) if box else None)
        publisher = FleetPublisher(args.mqtt, device_id or "bridge", fleet=args.fleet,
                                   board=board, firmware=firmware, model_sha256=sha,
                                   handler=agent, extra=agent.status_fields())
        box["pub"] = publisher
        agent.start_ticker()

        def forward(batches: list[Any]) -> int:
            n = 0
            for batch in batches:
                for line in batch.lines:
                    text = line.strip()
                    if text.startswith("{") and _telemetry_object(text):
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
            agent.stop()
            publisher.close()
            delivery.stop()
    if args.json:
        print(json.dumps({"ok": True, "device_id": device_id, "forwarded": forwarded,
                          "topic": publisher.telemetry_topic}))
    else:
        print(f"forwarded {forwarded} telemetry messages to {publisher.telemetry_topic}")
    return 0


def _telemetry_object(text: str) -> bool:
    """Whether the fleet view would take this line (the one decoder, with its limits)."""
    from device_drivers.telemetry.message import BadMessage, decode_telemetry

    try:
        decode_telemetry(text)
    except BadMessage:
        return False
    return True
