"""``tinyops doctor``: check every port and the host setup, and say how to fix what is wrong.

Checks: user board files valid; (Linux) membership of the serial group (dialout/uucp), the
udev rule installed, services that grab serial ports (ModemManager, brltty); per port:
still there, readable/writable, not held by another process, not in bootloader mode, not
an unidentified bridge; UF2 drives (boards waiting in their bootloader); stale virtual
board announcements; (Linux) the system libraries the desktop app's Qt needs (each loaded
with ``ctypes``; a missing one is named with the Debian/Ubuntu package that provides it).
Nothing here opens a port: permission is checked with ``os.access`` and ownership via
``/proc``, so a doctor run cannot reset a board.

Everything host-specific comes through ``DoctorEnv`` so tests can point it at fake roots.
"""

from __future__ import annotations

import ctypes
import getpass
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from device_drivers import ports
from device_drivers.boards.detect import DetectedBoard

OK, WARN, FAIL = "ok", "warn", "fail"
SERIAL_GROUPS = ("dialout", "uucp")


@dataclass
class DoctorEnv:
    platform: str = sys.platform
    proc_root: str = "/proc"
    group_file: str = "/etc/group"
    udev_dirs: tuple[str, ...] = ("/etc/udev/rules.d", "/usr/lib/udev/rules.d",
                                  "/lib/udev/rules.d", "/run/udev/rules.d")
    access: Callable[[str, int], bool] = os.access
    user: str = field(default_factory=getpass.getuser)
    active_gids: Callable[[], set[int]] = field(
        default_factory=lambda: (lambda: {*os.getgroups(), os.getgid()}))
    own_pid: int = field(default_factory=os.getpid)
    is_root: bool = field(default_factory=lambda: hasattr(os, "geteuid") and os.geteuid() == 0)
    load_library: Callable[[str], bool] = field(default_factory=lambda: _can_load)

    @property
    def linux(self) -> bool:
        return self.platform.startswith("linux")


@dataclass(frozen=True)
class Check:
    id: str
    status: str
    message: str
    fix: str | None = None
    port: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "message": self.message,
                "fix": self.fix, "port": self.port}


@dataclass
class DoctorReport:
    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.status != FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {s: sum(c.status == s for c in self.checks) for s in (OK, WARN, FAIL)}

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(),
                "checks": [c.to_dict() for c in self.checks]}


def _groups(group_file: str) -> dict[str, tuple[int, list[str]]]:
    """name -> (gid, listed members) from an /etc/group-format file."""
    out: dict[str, tuple[int, list[str]]] = {}
    try:
        with open(group_file, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.strip().split(":")
                if len(parts) >= 4 and parts[2].isdigit():
                    out[parts[0]] = (int(parts[2]), [m for m in parts[3].split(",") if m])
    except OSError:
        pass
    return out


def check_serial_group(env: DoctorEnv) -> list[Check]:
    groups = _groups(env.group_file)
    present = [g for g in SERIAL_GROUPS if g in groups]
    if not present:
        return []
    name = present[0]
    gid, members = groups[name]
    if env.is_root:
        return [Check("serial-group", OK, f"running as root: the {name} group is not needed")]
    if gid in env.active_gids():
        return [Check("serial-group", OK, f"you are in the {name} group")]
    if env.user in members:
        return [Check("serial-group", WARN,
                      f"you were added to {name}, but this login session predates it",
                      f"log out and back in (or run `newgrp {name}`)")]
    return [Check("serial-group", WARN, f"you are not in the {name} group (serial ports "
                  "may be denied)", f"sudo usermod -aG {name} $USER, then log out and in")]


def check_udev_rule(env: DoctorEnv) -> list[Check]:
    for directory in env.udev_dirs:
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in names:
            if "tinyops" in name.lower() and name.endswith(".rules"):
                return [Check("udev-rule", OK,
                              f"udev rule installed: {os.path.join(directory, name)}")]
    return [Check("udev-rule", WARN, "the TinyOps udev rule is not installed (boards may be "
                  "root-only and ModemManager may grab them)", ports.udev_install_command())]


def _running(env: DoctorEnv, name: str) -> list[int]:
    pids: list[int] = []
    try:
        entries = os.listdir(env.proc_root)
    except OSError:
        return pids
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(env.proc_root, entry, "comm"), encoding="utf-8") as fh:
                if fh.read().strip() == name:
                    pids.append(int(entry))
        except OSError:
            continue
    return pids


def check_services(env: DoctorEnv, boards: Sequence[DetectedBoard]) -> list[Check]:
    checks = []
    if _running(env, "ModemManager"):
        checks.append(Check("modemmanager", WARN, "ModemManager is running: it probes new "
                            "serial ports and can hold them for seconds after plug-in",
                            "install the TinyOps udev rule (it sets ID_MM_DEVICE_IGNORE) or "
                            "sudo systemctl stop ModemManager"))
    ch34x = [b for b in boards if b.vid == 0x1A86]
    if ch34x and _running(env, "brltty"):
        checks.append(Check("brltty", FAIL, "brltty is running and claims WCH CH340/CH341 "
                            "serial adapters (the port disappears right after plug-in)",
                            "sudo apt remove brltty (or disable its udev rules)",
                            port=ch34x[0].port))
    return checks


def check_port(item: DetectedBoard, env: DoctorEnv) -> list[Check]:
    port = item.port
    board = item.board
    label = f"{board.name}" if board else "unknown device"
    if item.source == "uf2":
        back = (board.recovery if board and board.recovery else
                "press reset once (or unplug and replug) to start the application")
        return [Check("bootloader", WARN, f"{label} is in its UF2 bootloader ({port})", back,
                      port)]
    if item.source == "virtual":
        pid = item.details.get("pid")
        return [Check("virtual", OK, f"{port}: virtual board ({label}, pid {pid})", None, port)]
    if item.source != "serial":
        return []
    if not os.path.exists(port):
        err = ports.vanished_error(port)
        return [Check("port-exists", FAIL, err.message, err.hint, port)]
    checks = []
    if not env.access(port, os.R_OK | os.W_OK):
        checks.append(Check("permission", FAIL, f"no read/write permission on {port}",
                            ports.permission_hint(port), port))
    owners = [o for o in ports.port_owners(port, env.proc_root) if o[0] != env.own_pid]
    if owners:
        checks.append(Check("busy", WARN, f"{port} is held by {ports.describe_owners(owners)}",
                            "close that program before flashing or monitoring", port))
    if item.mode == "bootloader":
        back = (board.recovery if board and board.recovery else
                "press reset once (or unplug and replug) to start the application")
        checks.append(Check("bootloader", WARN, f"{label} on {port} is in its bootloader",
                            back, port))
    if board is None:
        usb = item.to_dict()["usb_id"] or "no USB id"
        checks.append(Check("unknown-device", WARN, f"{port}: unknown USB serial device "
                            f"({usb}, {item.product or 'no product string'})",
                            "run `tinyops boards --probe`; add the board to "
                            "<config>/boards/*.json if it is yours", port))
    elif item.unknown_bridge:
        others = [c.board.id for c in item.candidates[1:4] if not c.board.is_bridge]
        maybe = f" (could be {', '.join(others)})" if others else ""
        serial = item.serial_number or "SERIAL"
        checks.append(Check("unknown-bridge", WARN, f"{port}: {board.name}{maybe}",
                            "identify it with `tinyops boards --probe`, or name it: "
                            f"tinyops boards alias {serial} NAME", port))
    if not checks:
        checks.append(Check("port", OK, f"{port}: {label} ({item.mode})", None, port))
    return checks


GUI_LIBRARIES: tuple[tuple[str, str, str], ...] = (
    # (soname, Debian/Ubuntu package, what needs it) — Qt 6's xcb platform plugin and its
    # OpenGL/fonts stack; without any of these the desktop app does not start
    ("libxcb-cursor.so.0", "libxcb-cursor0", "Qt's X11 plugin (Qt >= 6.5)"),
    ("libxcb-icccm.so.4", "libxcb-icccm4", "Qt's X11 plugin"),
    ("libxcb-keysyms.so.1", "libxcb-keysyms1", "Qt's X11 plugin"),
    ("libxcb-image.so.0", "libxcb-image0", "Qt's X11 plugin"),
    ("libxcb-render-util.so.0", "libxcb-render-util0", "Qt's X11 plugin"),
    ("libxcb-shape.so.0", "libxcb-shape0", "Qt's X11 plugin"),
    ("libxcb-randr.so.0", "libxcb-randr0", "Qt's X11 plugin"),
    ("libxcb-xkb.so.1", "libxcb-xkb1", "Qt's X11 plugin"),
    ("libxkbcommon.so.0", "libxkbcommon0", "keyboard input"),
    ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0", "keyboard input on X11"),
    ("libEGL.so.1", "libegl1", "OpenGL (Qt GUI)"),
    ("libGL.so.1", "libgl1", "OpenGL (Qt GUI)"),
    ("libfontconfig.so.1", "libfontconfig1", "fonts"),
    ("libdbus-1.so.3", "libdbus-1-3", "desktop integration"),
)


def _can_load(soname: str) -> bool:
    try:
        ctypes.CDLL(soname)
    except OSError:
        return False
    return True


def missing_gui_libraries(env: DoctorEnv | None = None) -> list[tuple[str, str, str]]:
    """The GUI libraries that cannot be loaded here, as (soname, package, purpose)."""
    load = (env or DoctorEnv()).load_library
    return [lib for lib in GUI_LIBRARIES if not load(lib[0])]


def check_gui_libraries(env: DoctorEnv) -> list[Check]:
    missing = missing_gui_libraries(env)
    if not missing:
        return [Check("gui-libraries", OK, "the desktop app's system libraries are installed")]
    names = ", ".join(lib[0] for lib in missing)
    packages = " ".join(dict.fromkeys(lib[1] for lib in missing))
    return [Check("gui-libraries", WARN, f"the desktop app cannot start: missing {names} "
                  "(the command line works without them)",
                  f"sudo apt-get install {packages}   (Debian/Ubuntu; other distributions: "
                  "the packages providing these files)")]


def run_doctor(boards: Sequence[DetectedBoard] | None = None,
               env: DoctorEnv | None = None, *,
               virtual_dir: str | None = None) -> DoctorReport:
    """Run every check; ``boards`` defaults to a fresh ``scan()``."""
    from device_drivers.boards.registry import registry_problems
    from device_drivers.boards.scan import scan
    from device_drivers.boards.virtual_boards import stale_announcements

    env = env or DoctorEnv()
    items = list(boards) if boards is not None else scan()
    checks: list[Check] = [Check("registry", FAIL, problem, "fix or remove that file")
                           for problem in registry_problems()]
    if env.linux:
        checks += check_serial_group(env)
        checks += check_udev_rule(env)
        checks += check_services(env, items)
        checks += check_gui_libraries(env)
    for item in items:
        checks += check_port(item, env)
    if not any(i.source in ("serial", "uf2", "virtual") for i in items):
        checks.append(Check("no-boards", WARN, "no boards found",
                            "plug a board in (data cable, not charge-only) or start "
                            "`tinyops sim`"))
    for ann in stale_announcements(virtual_dir):
        checks.append(Check("virtual-stale", OK, f"ignored a stale virtual board announcement "
                            f"({ann.path}: pid {ann.pid} is gone)"))
    return DoctorReport(checks)
