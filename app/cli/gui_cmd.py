"""``tinyops gui``: the desktop app (also what plain ``tinyops`` runs)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from device_drivers.errors import InputError, TinyOpsError


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
    check_display_libraries()
    from app.gui.launch import GuiOptions, run

    report = run(GuiOptions(demo=args.demo, kiosk=args.kiosk, port=args.port,
                            screenshot=args.screenshot, quit_after=args.quit_after,
                            auto_demo=args.auto_demo))
    if args.json:
        print(json.dumps(report.to_dict()))
    return 0 if report.ok else 1


def check_display_libraries() -> None:
    """Before Qt aborts with a message about plug-ins: name the missing X11 libraries and
    the packages to install (the same check as ``tinyops doctor``)."""
    import os
    import sys

    platform = os.environ.get("QT_QPA_PLATFORM", "")
    x11 = platform.startswith("xcb") or (not platform and os.environ.get("DISPLAY")
                                         and not os.environ.get("WAYLAND_DISPLAY"))
    if not sys.platform.startswith("linux") or not x11:
        return
    from device_drivers.boards.doctor import missing_gui_libraries

    missing = missing_gui_libraries()
    if missing:
        packages = " ".join(dict.fromkeys(lib[1] for lib in missing))
        raise TinyOpsError(f"the desktop app cannot start: missing system libraries "
                           f"{', '.join(lib[0] for lib in missing)}",
                           f"sudo apt-get install {packages}  (then run `tinyops` again; "
                           "`tinyops doctor` checks the rest of the setup)")
