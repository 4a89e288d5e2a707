"""``tinyops gui``: the desktop app (also what plain ``tinyops`` runs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from device_drivers.errors import InputError


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "gui", help="open the desktop app (default command)",
        description="Open the TinyOps desktop app. Without a board plugged in it shows the "
                    "built-in demo board.")
    p.add_argument("--demo", action="store_true",
                   help="start the virtual board in-process and show live inference")
    p.add_argument("--kiosk", action="store_true",
                   help="full screen live view, auto-connect and auto-reconnect, no dialogs")
    p.add_argument("--port", metavar="P", help="connect to this port at start")
    p.add_argument("--no-auto-demo", dest="auto_demo", action="store_false",
                   help="do not start the demo board when no board is plugged in")
    p.add_argument("--screenshot", metavar="FILE",
                   help="save a PNG of the window shortly before quitting (needs --quit-after)")
    p.add_argument("--quit-after", metavar="SECONDS", type=float,
                   help="quit after this many seconds (for docs, tests and bug reports)")
    p.add_argument("--json", action="store_true",
                   help="print a JSON summary (start time, screenshot, errors) on exit")
    p.set_defaults(func=run_gui)


def run_gui(args: argparse.Namespace) -> int:
    if args.screenshot and args.quit_after is None:
        raise InputError("--screenshot needs --quit-after",
                         "e.g. tinyops gui --demo --screenshot out.png --quit-after 20")
    if args.quit_after is not None and args.quit_after < 0:
        raise InputError("--quit-after must be 0 or more seconds")
    from app.gui.launch import GuiOptions, run

    report = run(GuiOptions(demo=args.demo, kiosk=args.kiosk, port=args.port,
                            screenshot=args.screenshot, quit_after=args.quit_after,
                            auto_demo=args.auto_demo))
    if args.json:
        print(json.dumps(report.to_dict()))
    return 0 if report.ok else 1
