"""``tinyops boards`` (list, watch, registry, aliases) and ``tinyops doctor``."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

from device_drivers import ports
from device_drivers.errors import PortError


def register(sub: argparse._SubParsersAction) -> None:
    boards = sub.add_parser(
        "boards", help="list connected boards (serial ports, UF2 drives, virtual boards)",
        description="List connected boards: port, board, mode, USB serial, back end. "
                    "`tinyops boards alias SERIAL NAME` names a board.")
    boards.add_argument("--watch", action="store_true",
                        help="keep running and print boards as they are plugged/unplugged")
    boards.add_argument("--duration", type=float, default=None,
                        help="with --watch: stop after this many seconds")
    boards.add_argument("--registry", action="store_true",
                        help="print the board registry instead of connected boards")
    boards.add_argument("--probe", action="store_true",
                        help="ask each port who it is (read-only SMP echo/params, model-info)")
    boards.add_argument("--timeout", type=float, default=0.5, help="probe timeout per request")
    boards.add_argument("--port", help="only this port (device path, URL, alias or serial)")
    boards.add_argument("--all", action="store_true", help="include non-USB serial ports")
    boards.add_argument("--alias", nargs=2, metavar=("SERIAL", "NAME"),
                        help="give the board with this USB serial number a friendly name")
    boards.add_argument("--json", action="store_true",
                        help="print one JSON object (JSON lines with --watch)")
    boards.set_defaults(func=cmd_boards)
    inner = boards.add_subparsers(dest="boards_command", metavar="alias")
    alias = inner.add_parser("alias", help="name a board by its USB serial number")
    alias.add_argument("serial", help="USB serial number (SERIAL column of `tinyops boards`)")
    alias.add_argument("name", nargs="?", help="friendly name, e.g. line-3-left")
    alias.add_argument("--remove", action="store_true", help="remove the alias of SERIAL")
    alias.add_argument("--json", action="store_true", help="print one JSON object")
    alias.set_defaults(func=cmd_alias)

    doctor = sub.add_parser("doctor", help="check ports, permissions and setup; print fixes")
    doctor.add_argument("--port", help="check only this port")
    doctor.add_argument("--json", action="store_true", help="print one JSON object")
    doctor.set_defaults(func=cmd_doctor)


# ------------------------------------------------------------------------------- boards
def cmd_boards(args: argparse.Namespace) -> int:
    if args.alias:
        args.serial, args.name, args.remove = args.alias[0], args.alias[1], False
        return cmd_alias(args)
    if args.registry:
        return _print_registry(args)
    if args.watch:
        return _watch(args)
    from device_drivers.boards import probe_detected, scan

    found = _select(scan(include_all=args.all or bool(args.port)), args.port)
    if args.probe:
        probe_detected(found, timeout_s=args.timeout)
    if args.json:
        print(json.dumps({"ok": True, "count": len(found),
                          "boards": [b.to_dict() for b in found]}))
        return 0
    _print_table(found, probed=args.probe)
    return 0


def _select(found: list[Any], port: str | None) -> list[Any]:
    """All boards, or the one on ``port`` (exit 2 with the cause if there is none)."""
    if not port:
        return found
    from device_drivers.boards import DetectedBoard, resolve_port

    wanted = resolve_port(port, found)
    ports.require_port(wanted)
    match = [b for b in found if b.port == wanted]
    if match:
        return match
    if "://" in wanted:
        return [DetectedBoard(port=wanted, source="serial")]
    raise PortError(f"{wanted} is not a serial port of a connected board",
                    "run `tinyops boards` to list them")


def _label(item: Any) -> str:
    board = item.board
    if board is None:
        return "unknown"
    text = f"{board.id} ({board.name})"
    if len(item.candidates) > 1 and item.candidates[1].confidence >= item.confidence - 1e-6:
        text += f" or {item.candidates[1].board.id}"
    return text


def _print_table(found: list[Any], probed: bool) -> None:
    if not found:
        print("no boards found (plug one in, or start `tinyops sim`); `tinyops doctor` helps")
        return
    rows = [("PORT", "BOARD", "MODE", "SERIAL", "BACKEND", "VIRTUAL", "RUNTIME", "ALIAS")]
    for item in found:
        runtime = item.runtime_version or ("no answer" if probed and item.probe is not None
                                           and not item.probe.answered else "-")
        rows.append((item.port, _label(item), item.mode, item.serial_number or "-",
                     item.backend or "-", "yes" if item.virtual else "no",
                     runtime, item.alias or "-"))
    widths = [min(max(len(r[i]) for r in rows), 60) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell[:60].ljust(w) for cell, w in zip(row, widths, strict=True))
              .rstrip())
    hints = [i for i in found if i.unknown_bridge or i.mode == "bootloader"]
    for item in hints:
        if item.mode == "bootloader" and item.board is not None:
            back = item.board.recovery or "press reset once to start the application"
            print(f"note: {item.port} is in bootloader mode: {back}")
        elif item.unknown_bridge:
            print(f"note: {item.port} is a generic bridge; `tinyops boards --probe` may "
                  "identify the board")


def _print_registry(args: argparse.Namespace) -> int:
    from device_drivers.boards import load_registry, registry_problems

    boards = load_registry()
    for problem in registry_problems():
        print(f"warning: skipped {problem}", file=sys.stderr)
    if args.json:
        # The contract: the registry itself, a list of board objects.
        print(json.dumps([b.to_dict() for b in boards]))
        return 0
    rows = [("ID", "NAME", "MCU", "FLASH", "RAM", "BACKEND", "USB")]
    for b in boards:
        usb = " ".join(sorted({f"{u.vid:04x}:{u.pid:04x}" for u in b.usb}))
        rows.append((b.id, b.name, b.mcu, _size(b.flash), _size(b.ram), b.backend, usb))
    widths = [min(max(len(r[i]) for r in rows), 44) for i in range(len(rows[0]) - 1)]
    for row in rows:
        head = "  ".join(c[:44].ljust(w) for c, w in zip(row[:-1], widths, strict=True))
        print(f"{head}  {row[-1]}")
    real = sum(1 for b in boards if b.kind == "board")
    print(f"{len(boards)} entries: {real} boards, "
          f"{sum(1 for b in boards if b.kind == 'bridge')} bridges, "
          f"{sum(1 for b in boards if b.kind == 'virtual')} virtual")
    return 0


def _size(n: int) -> str:
    if not n:
        return "?"
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    return f"{n // 1024}K"


def _watch(args: argparse.Namespace) -> int:
    from device_drivers.boards import watch

    stop = threading.Event()
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    if not args.json:
        print("watching for boards (Ctrl-C to stop)", flush=True)
    try:
        for event in watch(stop=stop):
            if args.json:
                print(json.dumps(event.to_dict()), flush=True)
            else:
                sign = "+" if event.kind == "added" else "-"
                stamp = time.strftime("%H:%M:%S", time.localtime(event.t))
                b = event.board
                extra = f"  serial {b.serial_number}" if b.serial_number else ""
                alias = f"  [{b.alias}]" if b.alias else ""
                print(f"{stamp} {sign} {b.port}  {_label(b)}  {b.mode}"
                      f"{'  virtual' if b.virtual else ''}{extra}{alias}", flush=True)
    except KeyboardInterrupt:
        stop.set()
    return 0


# ------------------------------------------------------------------------------- alias
def cmd_alias(args: argparse.Namespace) -> int:
    from device_drivers.boards import remove_alias, set_alias
    from device_drivers.errors import InputError

    if args.remove:
        removed = remove_alias(args.serial)
        if args.json:
            print(json.dumps({"ok": True, "serial": args.serial, "removed": removed}))
        else:
            print(f"alias of {args.serial} removed" if removed else
                  f"{args.serial} had no alias")
        return 0
    if not args.name:
        raise InputError("missing alias name", "tinyops boards alias SERIAL NAME")
    set_alias(args.serial, args.name)
    if args.json:
        print(json.dumps({"ok": True, "serial": args.serial, "alias": args.name.strip()}))
    else:
        print(f"{args.serial} is now {args.name.strip()!r}")
    return 0


# ------------------------------------------------------------------------------- doctor
def cmd_doctor(args: argparse.Namespace) -> int:
    from device_drivers.boards import run_doctor, scan

    found = scan(include_all=bool(args.port))
    if args.port:
        found = _select(found, args.port)
    report = run_doctor(found)
    from app.cli.model_cmds import feature_checks

    report.checks += feature_checks()  # what works here without tflite-micro / TensorFlow
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0 if report.ok else 1
    marks = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}
    for check in report.checks:
        print(f"[{marks[check.status]}] {check.message}")
        if check.fix and check.status != "ok":
            print(f"       fix: {check.fix}")
    counts = report.counts()
    print(f"{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} problem(s)")
    return 0 if report.ok else 1
