"""Opening serial ports, and explaining why one cannot be opened.

(Minimal version; the board-detection work extends ``explain`` with busy-port owners,
udev hints and bootloader-mode advice.)
"""

from __future__ import annotations

import errno
import os
import sys

import serial

from device_drivers.errors import PortError


def explain(port: str, exc: BaseException) -> PortError:
    """Turn an exception from opening ``port`` into a PortError that says what to do."""
    err = getattr(exc, "errno", None)
    text = str(exc)
    if err == errno.ENOENT or "No such file" in text or ("could not open port" in text and (
        not port.startswith(("socket://", "rfc2217://", "loop://")) and not os.path.exists(port)
    )):
        return PortError(f"port {port} does not exist",
                         "check the cable and run `tinyops boards` to list connected boards")
    if err in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        hint = ("add yourself to the dialout group: sudo usermod -aG dialout $USER, then log out "
                "and in" if sys.platform.startswith("linux") else "check the port's permissions")
        return PortError(f"permission denied opening {port}", hint)
    if err == errno.EBUSY or "busy" in text.lower() or "exclusively lock" in text:
        return PortError(f"port {port} is busy: another program has it open",
                         "close the other program (serial monitor, IDE) and try again")
    if "Connection refused" in text or err == errno.ECONNREFUSED:
        return PortError(f"nothing is listening at {port}", "start the board or `tinyops sim`")
    return PortError(f"cannot open {port}: {text}")


def open_serial(port: str, baudrate: int = 115200, timeout: float = 0.0,
                exclusive: bool = True) -> serial.SerialBase:
    """Open a device path or pyserial URL; raise PortError with a fix when it cannot be."""
    try:
        kwargs = {"baudrate": baudrate, "timeout": timeout, "write_timeout": 5.0}
        if "://" not in port:
            kwargs["exclusive"] = exclusive
        return serial.serial_for_url(port, **kwargs)
    except (OSError, serial.SerialException, ValueError) as exc:
        raise explain(port, exc) from exc
