"""``tinyops info`` and ``tinyops monitor``: talk to one board through a device session."""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import time
from typing import Any

from app.cli.link_opts import add_link_options, link_options
from device_drivers.errors import DeviceError
from tinyops_base.validators import positive_float, positive_int

PORT_HELP = "device path, pyserial URL, board alias or USB serial number"


def register(sub: argparse._SubParsersAction) -> None:
    info = sub.add_parser("info", help="what a board runs: runtime, loaded model, SMP params")
    info.add_argument("--port", required=True, help=PORT_HELP)
    info.add_argument("--baud", type=positive_int, default=115200)
    info.add_argument("--timeout", type=positive_float, default=2.0,
                      help="seconds per request")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    add_link_options(info)
    info.set_defaults(func=cmd_info)

    mon = sub.add_parser("monitor", help="print live readings from a board")
    mon.add_argument("--port", required=True, help=PORT_HELP)
    mon.add_argument("--baud", type=positive_int, default=115200)
    mon.add_argument("--duration", type=float, default=None, help="seconds (default: until ^C)")
    mon.add_argument("--record", metavar="FILE.csv", help="record every sample to CSV")
    mon.add_argument("--format", choices=["json", "arduino", "ei"], default=None,
                     help="telemetry format (default: auto-detect)")
    mon.add_argument("--start-stream", action="store_true",
                     help="ask a TinyOps runtime to start streaming first")
    mon.add_argument("--json", action="store_true",
                     help="print a JSON summary at the end (per-channel counts, last values)")
    add_link_options(mon)
    mon.set_defaults(func=cmd_monitor)


def _open(args: argparse.Namespace, **kw: Any) -> Any:
    from device_drivers.boards import resolve_port
    from device_drivers.link import DeviceSession

    # --port takes a device path, a pyserial URL, a board alias or a USB serial number.
    args.port = resolve_port(args.port)
    return DeviceSession.open(args.port, baudrate=args.baud, options=link_options(args), **kw)


def cmd_info(args: argparse.Namespace) -> int:
    with _open(args, timeout_s=args.timeout) as session:
        from device_drivers.device_info import device_info

        out = device_info(session)
    if args.json:
        print(json.dumps(out))
        return 0 if out["smp"] else 1
    print(f"port      {out['port']}")
    if not out["smp"]:
        print(f"SMP       no answer ({out.get('smp_error')}); the board may only print text —"
              " try `tinyops monitor`")
        return 1
    params = out.get("params") or {}
    buffers = (f"buffer {params['buf_size']} B x {params['buf_count']}" if params
               else "no MCUmgr params (conservative frames)")
    print(f"SMP       yes, {out['transport']} transport, {buffers}")
    print(f"groups    {', '.join(out.get('groups') or []) or 'none'} "
          f"(by {out.get('groups_source')})")
    if out.get("app_info"):
        print(f"app       {out['app_info']}")
    boot = out.get("bootloader")
    if boot:
        print(f"boot      {boot['mode']}: {boot['detail']}")
    for slot in out.get("images") or []:
        flags = [k for k in ("active", "confirmed", "pending", "permanent") if slot.get(k)]
        print(f"image {slot['image']}   slot {slot['slot']}  v{slot['version']}  "
              f"{(slot['hash'] or '?')[:16]}…  {' '.join(flags)}")
    if out.get("images_error"):
        print(f"images    {out['images_error']}")
    if out["runtime"] is None:
        groups = out.get("groups") or []
        can = [what for group, what in (("fs", "files"), ("img", "MCUboot images"))
               if group in groups]
        print("runtime   none (a plain SMP server" +
              (f": {' and '.join(can)} can be flashed)" if can else ": nothing to flash to)"))
        return 0
    print(f"runtime   {out['runtime']} (protocol {out['protocol']}) on {out['board'] or '?'}")
    model = out.get("model")
    if model is None:
        print(f"model     none loaded; arena {out['arena_size']} B available")
    else:
        print(f"model     {model['path']}  {model['size']} B  sha256 {model['sha256']}")
        print(f"arena     {model['arena_used']} of {out['arena_size']} B used")
        for spec in model["inputs"]:
            print(f"input     {spec['dtype']}{spec['shape']} scale {spec['scale']:.6g} "
                  f"zero {spec['zero_point']}")
        for spec in model["outputs"]:
            print(f"output    {spec['dtype']}{spec['shape']} scale {spec['scale']:.6g} "
                  f"zero {spec['zero_point']}")
        if model["labels"]:
            print(f"labels    {', '.join(model['labels'])}")
    return 0


class _Summary:
    """Per-channel counts and last values over a monitor run."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.top_label: str | None = None
        self.lines = 0
        self.dropped = 0
        self.format: str | None = None

    def add(self, batch: Any) -> None:
        for name, (_, values) in batch.channels.items():
            if len(values):
                self.counts[name] = self.counts.get(name, 0) + len(values)
                self.last[name] = float(values[-1])
        if batch.top_label:
            self.top_label = batch.top_label
        self.lines += batch.parsed
        self.dropped += batch.dropped
        self.format = batch.format or self.format

    def as_dict(self, duration: float) -> dict[str, Any]:
        latency = self.last.get("latency_us")
        return {
            "ok": True,
            "duration_s": round(duration, 3),
            "format": self.format,
            "parsed": self.lines,
            "dropped": self.dropped,
            "channels": {k: {"count": self.counts[k], "last": _finite(self.last.get(k))}
                         for k in sorted(self.counts)},
            "top_label": self.top_label,
            "latency_us": _finite(latency),
        }


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _status_line(batch: Any, summary: _Summary) -> str:
    scores = {k[6:]: v for k, v in summary.last.items() if k.startswith("score/")}
    parts = []
    if summary.top_label:
        parts.append(f"{summary.top_label:>14}")
    parts += [f"{k}={v:.2f}" for k, v in scores.items()]
    for key, unit in (("latency_us", "us"), ("arena_used", "B arena"), ("temp_c", "C"),
                      ("vcc_mv", "mV")):
        if key in summary.last:
            parts.append(f"{summary.last[key]:.0f} {unit}")
    others = [k for k in summary.last if not k.startswith("score/") and k not in
              ("latency_us", "arena_used", "temp_c", "vcc_mv", "t")]
    parts += [f"{k}={summary.last[k]:.4g}" for k in others[:6]]
    return "  ".join(parts) if parts else "(waiting for data)"


def cmd_monitor(args: argparse.Namespace) -> int:
    from device_drivers.recording import TelemetryRecorder

    # A signal handler must not take locks (Event.set could deadlock against the main
    # thread's own wait): it only flips a flag that the loop polls.
    stop = {"now": False}

    def on_sigterm(*_: object) -> None:
        stop["now"] = True

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    summary = _Summary()
    recorder = TelemetryRecorder(args.record) if args.record else None
    started = time.monotonic()
    try:
        with _open(args, telemetry_format=args.format, read_params=False) as session:
            from app.cli.identity_watch import IdentityWatch

            watch = IdentityWatch(session, args.port)  # another board ends the session

            def take(batch: Any) -> None:
                summary.add(batch)
                if recorder is not None:
                    recorder.write(batch)
                if not args.json:
                    for line in batch.lines if args.format is None and not batch.channels \
                            else []:
                        print(line)
                    if batch.channels:
                        print(_status_line(batch, summary), flush=True)

            if args.start_stream:
                session.stream(True)
            while not stop["now"]:
                if args.duration is not None and time.monotonic() - started >= args.duration:
                    break
                time.sleep(0.25)
                if not session.connected:
                    raise DeviceError(f"lost {args.port}: {session.disconnect_reason}",
                                      "check the cable; replug the board")
                for batch in watch.add(session.telemetry()):
                    take(batch)
            for batch in watch.flush():
                take(batch)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        if recorder is not None:
            recorder.close()
    result = summary.as_dict(time.monotonic() - started)
    if recorder is not None:
        result["recorded"] = {"file": str(args.record), "rows": recorder.rows}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['parsed']} lines, {sum(summary.counts.values())} samples in "
              f"{result['duration_s']} s; top label {summary.top_label}", file=sys.stderr)
    return 0
