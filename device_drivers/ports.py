"""Opening serial ports, and explaining why one cannot be opened.

``explain(port, exc)`` turns the OS error into a ``PortError`` that says what happened and
what to do: a missing port (and which ports do exist), permission denied (the group that
owns the device, whether the user is in it, the udev rule), a busy port (which process holds
it, where the OS can tell: Linux /proc), a port that vanished mid-use (unplug or reset).
``wrong_mode_hint(port)`` says when a port belongs to a board sitting in its bootloader.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path
from typing import Any

import serial

from device_drivers.errors import PortError

_URL_SCHEMES = ("socket://", "rfc2217://", "loop://", "spy://", "hwgrep://", "alt://")
UDEV_RULES_NAME = "60-tinyops.rules"


def is_url(port: str) -> bool:
    return "://" in port


def udev_rules_source() -> Path:
    """The shipped rule file (repo checkout); installers copy it to /etc/udev/rules.d/."""
    return Path(__file__).resolve().parent.parent / "packaging" / "linux" / UDEV_RULES_NAME


def udev_install_command() -> str:
    src = udev_rules_source()
    return (f"sudo cp {src} /etc/udev/rules.d/ && sudo udevadm control --reload-rules "
            "&& sudo udevadm trigger")


def port_owners(device: str, proc_root: str = "/proc") -> list[tuple[int, str]]:
    """Processes that have ``device`` open, as (pid, name), found via ``/proc/*/fd`` (Linux).

    Processes we may not inspect are skipped; an empty list means "none found", which on
    other systems (or without permission) does not prove the port is free.
    """
    try:
        target = os.path.realpath(device)
        entries = os.listdir(proc_root)
    except OSError:
        return []
    owners = []
    for entry in entries:
        if not entry.isdigit():
            continue
        fd_dir = os.path.join(proc_root, entry, "fd")
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(fd_dir, fd))
            except OSError:
                continue
            if link in (target, device):
                owners.append((int(entry), _process_name(proc_root, entry)))
                break
    return sorted(owners)


def _process_name(proc_root: str, pid: str) -> str:
    try:
        with open(os.path.join(proc_root, pid, "comm"), encoding="utf-8") as fh:
            return fh.read().strip() or "?"
    except OSError:
        return "?"


def describe_owners(owners: list[tuple[int, str]]) -> str:
    me = os.getpid()
    parts = [("this program" if pid == me else f"{name} (pid {pid})") for pid, name in owners]
    return ", ".join(parts)


def group_access(device: str) -> tuple[str | None, bool, bool]:
    """(group owning ``device``, user's session has it, user is listed in /etc/group)."""
    try:
        import grp
        import pwd

        gid = os.stat(device).st_gid
        group = grp.getgrgid(gid)
        user = pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError, OSError):
        return None, False, False
    active = gid in os.getgroups() or os.getgid() == gid
    listed = user in group.gr_mem
    return group.gr_name, active, listed


def permission_hint(port: str) -> str:
    if not sys.platform.startswith("linux"):
        if sys.platform == "darwin":
            return "check the port's permissions (ls -l) and that no driver prompt is pending"
        return "check the port's permissions"
    group, active, listed = group_access(port)
    group = group or "dialout"
    if listed and not active:
        return (f"you are in the {group} group but this session predates it: log out and "
                "back in (or run `newgrp " + group + "`)")
    return (f"add yourself to the {group} group: sudo usermod -aG {group} $USER, then log "
            f"out and in; or install the udev rule: {udev_install_command()}")


def existing_ports() -> list[str]:
    try:
        from serial.tools import list_ports

        return sorted(p.device for p in list_ports.comports() if p.vid is not None)
    except Exception:  # listing is only a courtesy in an error message
        return []


def missing_port_error(port: str) -> PortError:
    others = existing_ports()
    hint = "check the cable and run `tinyops boards` to list connected boards"
    if others:
        hint = f"connected ports: {', '.join(others[:6])}; run `tinyops boards` for details"
    return PortError(f"port {port} does not exist", hint)


def vanished_error(port: str) -> PortError:
    """The port disappeared while in use (unplugged, or the board reset/re-enumerated)."""
    return PortError(f"port {port} vanished (unplugged, or the board reset)",
                     "replug the board; if it came back in bootloader mode, press reset once; "
                     "`tinyops boards` shows its new port")


def require_port(port: str) -> str:
    """Check that a device path exists before anything opens it; URLs pass through."""
    if not port or not port.strip():
        raise PortError("no port given", "pass --port PORT (see `tinyops boards`)")
    if is_url(port) or os.path.exists(port) or (sys.platform.startswith("win")
                                                and port.upper().startswith("COM")):
        return port
    raise missing_port_error(port)


def explain(port: str, exc: BaseException) -> PortError:
    """Turn an exception from opening ``port`` into a PortError that says what to do."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    low = text.lower()
    if err == errno.ENOENT or "no such file" in low or ("could not open port" in low and (
        not port.startswith(_URL_SCHEMES) and not os.path.exists(port)
    )):
        return missing_port_error(port)
    if err in (errno.EACCES, errno.EPERM) or "permission denied" in low or "access is denied" \
            in low:
        return PortError(f"permission denied opening {port}", permission_hint(port))
    if err == errno.EBUSY or "busy" in low or "exclusively lock" in low:
        owners = port_owners(port) if sys.platform.startswith("linux") else []
        who = describe_owners(owners)
        message = f"port {port} is busy: " + (f"held by {who}" if who else
                                              "another program has it open")
        hint = ("close that program (serial monitor, IDE, another tinyops) and try again"
                if who else "close the other program (serial monitor, IDE) and try again")
        return PortError(message, hint)
    if "connection refused" in low or err == errno.ECONNREFUSED:
        return PortError(f"nothing is listening at {port}", "start the board or `tinyops sim`")
    if err in (errno.EIO, errno.ENXIO, errno.ENODEV) or "device disconnected" in low or \
            "device reports readiness to read but returned no data" in low:
        return vanished_error(port)
    return PortError(f"cannot open {port}: {text}")


def wrong_mode_hint(port: str, records: list[object] | None = None) -> str | None:
    """If ``port`` belongs to a board in its bootloader, how to get back to the application."""
    try:
        from device_drivers.boards.detect import detect_serial
        from device_drivers.boards.registry import load_registry

        if records is None:
            from serial.tools import list_ports

            records = [p for p in list_ports.comports() if p.device == port]
        found = [d for d in detect_serial(records, load_registry()) if d.port == port]
    except Exception:  # advice only; never turn it into a new failure
        return None
    if not found or found[0].mode != "bootloader" or found[0].board is None:
        return None
    board = found[0].board
    back = board.recovery or "press reset once (or unplug and replug) to start the application"
    return f"{board.name} on {port} is in its bootloader: {back}"


def open_serial(port: str, baudrate: int = 115200, timeout: float = 0.0,
                exclusive: bool = True) -> serial.SerialBase:
    """Open a device path or pyserial URL; raise PortError with a fix when it cannot be."""
    try:
        kwargs: dict[str, Any] = {"baudrate": baudrate, "timeout": timeout,
                                  "write_timeout": 5.0}
        if "://" not in port:
            kwargs["exclusive"] = exclusive
        return serial.serial_for_url(port, **kwargs)
    except (OSError, serial.SerialException, ValueError) as exc:
        raise explain(port, exc) from exc
