"""``tinyops image list|test|confirm|erase|reset --port P``: MCUboot slots for technicians.

The work is done by ``device_drivers.flashing.mcuboot``; this module parses, prints and
maps failures to exit codes (2: bad input such as a malformed hash, 1: the board refused
or did not answer).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.link_opts import add_link_options, link_options
from device_drivers.errors import InputError

PORT_HELP = "device path, pyserial URL, board alias or USB serial number"


def _hash(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"{text!r} is not an image hash (64 hex digits, as "
                                         "`tinyops image list` shows)")
    return value


def _slot(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a slot number") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"slot {value} is out of range (0-255)")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    img = sub.add_parser("image", help="MCUboot image slots: list, test, confirm, erase, reset")
    actions = img.add_subparsers(dest="image_action", metavar="ACTION", required=True)
    helps = {
        "list": "slots with version, hash and state; MCUboot's mode",
        "test": "boot an image once at the next reset (default: the one in the spare slot)",
        "confirm": "keep an image for good (default: the running one)",
        "erase": "erase the spare slot (or --slot N)",
        "reset": "reset the board (--bootloader: into MCUboot serial recovery)",
    }
    for name, text in helps.items():
        p = actions.add_parser(name, help=text, description=text)
        p.add_argument("--port", required=True, help=PORT_HELP)
        p.add_argument("--baud", type=int, default=115200)
        p.add_argument("--timeout", type=float, default=5.0,
                       help="seconds per request (a board may hash its slots first)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        if name in ("test", "confirm"):
            p.add_argument("hash", nargs="?", type=_hash, help="image hash (64 hex digits)")
        if name == "erase":
            p.add_argument("--slot", type=_slot, default=None,
                           help="slot to erase (default: the spare slot)")
        if name == "reset":
            p.add_argument("--bootloader", action="store_true",
                           help="reset into MCUboot serial recovery (boot_mode)")
        add_link_options(p)
        p.set_defaults(func=cmd_image)


def cmd_image(args: argparse.Namespace) -> int:
    from device_drivers.boards import resolve_port
    from device_drivers.flashing import mcuboot

    if args.baud <= 0 or args.timeout <= 0:
        raise InputError("--baud and --timeout must be positive", "e.g. --baud 115200")
    port = resolve_port(args.port)
    out: dict[str, Any] = {"ok": True, "port": port, "action": args.image_action}
    with mcuboot.open_session(port, baudrate=args.baud, timeout_s=args.timeout,
                              link=link_options(args)) as dev:
        slots = mcuboot.list_slots(dev)
        if args.image_action == "list":
            out["bootloader"] = mcuboot.detect_mode(dev, slots).to_dict()
        elif args.image_action == "test":
            digest = args.hash or _spare_hash(port, slots)
            slots = mcuboot.set_state(dev, bytes.fromhex(digest), confirm=False)
            out["hash"] = digest
        elif args.image_action == "confirm":
            slots = mcuboot.set_state(dev, bytes.fromhex(args.hash) if args.hash else None,
                                      confirm=True)
            out["hash"] = args.hash or _running_hash(slots)
        elif args.image_action == "erase":
            slots = mcuboot.erase_slot(dev, args.slot)
            out["slot"] = 1 if args.slot is None else args.slot
        else:
            if args.bootloader:
                mcuboot.enter_recovery(dev)
            else:
                mcuboot.reset(dev)
            out["bootloader_mode"] = bool(args.bootloader)
            slots = []
    if args.image_action != "reset":
        out["slots"] = [s.to_dict() for s in slots]
    if args.json:
        print(json.dumps(out))
    else:
        _print(out, slots)
    return 0


def _spare_hash(port: str, slots: list[Any]) -> str:
    spare = [s for s in slots if not s.active and s.hash]
    if len(spare) != 1:
        raise InputError(f"{port}: {'no' if not spare else 'more than one'} image waits in a "
                         "spare slot, so there is no default to test",
                         "pass the hash to test (see `tinyops image list`)")
    return str(spare[0].hash)


def _running_hash(slots: list[Any]) -> str | None:
    return next((s.hash for s in slots if s.active), None)


def _print(out: dict[str, Any], slots: list[Any]) -> None:
    action = out["action"]
    if action == "reset":
        where = "into MCUboot serial recovery" if out["bootloader_mode"] else ""
        print(f"reset {out['port']} {where}".rstrip())
        return
    if action == "list":
        boot = out["bootloader"]
        print(f"MCUboot mode  {boot['mode']} ({boot['detail']}; from {boot['source']})")
    elif action in ("test", "confirm"):
        print(f"{action} {out['hash'] or 'the running image'} on {out['port']}: done")
    elif action == "erase":
        print(f"erased slot {out['slot']} on {out['port']}")
    if not slots:
        print("no images listed")
    for s in slots:
        flags = ", ".join(s.flags) or "-"
        print(f"image {s.image} slot {s.slot}  {s.version:12s} {s.hash or '?'}  {flags}")
