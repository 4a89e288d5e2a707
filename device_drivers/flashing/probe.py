"""Asking the board's runtime what it runs: before a flash, and after a reboot to verify."""

from __future__ import annotations

import logging
import time

import serial
import serial.tools.list_ports

from device_drivers.errors import DeviceError, TinyOpsError
from device_drivers.flashing.base import CancelToken, check_cancel
from device_drivers.link.session import DeviceSession
from device_drivers.protocol import runtime

log = logging.getLogger(__name__)


def model_info(port: str, timeout_s: float = 2.0) -> runtime.ModelInfoReadResponse | None:
    """One model-info from ``port``; None if the device has no TinyOps runtime group."""
    with DeviceSession.open(port, timeout_s=timeout_s) as dev:
        return dev.model_info()


def previous_model(port: str | None, timeout_s: float = 1.5) -> str | None:
    """sha256 (hex) of the model loaded now, or None (no runtime, no model, no answer)."""
    if not port:
        return None
    try:
        info = model_info(port, timeout_s)
    except TinyOpsError as exc:
        log.info("%s: could not read the loaded model before flashing: %s", port, exc)
        return None
    if info is None or not info.loaded or info.sha256 is None:
        return None
    return bytes(info.sha256).hex()


def wait_for_runtime(port: str, timeout_s: float, cancel: CancelToken | None,
                     want_sha256: str | None = None) -> runtime.ModelInfoReadResponse:
    """Poll ``port`` until the runtime answers model-info (with ``want_sha256`` loaded)."""
    deadline = time.monotonic() + timeout_s
    last: str = "no answer"
    while True:
        check_cancel(cancel, "waiting for the board")
        try:
            info = model_info(port, timeout_s=1.0)
            if info is None:
                raise DeviceError(
                    f"{port} answers SMP but has no TinyOps runtime: cannot verify the model",
                    "flash the TinyOps runtime firmware first, or use the smp back end")
            sha = bytes(info.sha256).hex() if info.sha256 else None
            if want_sha256 is None or (info.loaded and sha == want_sha256):
                return info
            last = f"the runtime reports model {sha or 'none'}"
        except DeviceError as exc:
            if "no TinyOps runtime" in exc.message:
                raise
            last = exc.message
        except TinyOpsError as exc:  # port not there yet (re-enumerating)
            last = exc.message
        if time.monotonic() >= deadline:
            raise DeviceError(f"{port}: the board did not come back with the new model within "
                              f"{timeout_s:.0f} s ({last})",
                              "check the board's serial port after the reset; replug it and run "
                              "`tinyops info --port PORT`")
        time.sleep(0.25)


def usb_serial_for(port: str | None) -> str | None:
    """The USB serial number of ``port`` (None for ptys, sockets and unknown ports)."""
    if not port or "://" in port:
        return None
    try:
        import os

        real = os.path.realpath(port)
        for info in serial.tools.list_ports.comports():
            if info.device in (port, real) and info.serial_number:
                return str(info.serial_number)
    except (OSError, serial.SerialException):
        return None
    return None


def touch_1200bps(port: str, settle_s: float = 0.5) -> None:
    """Open and close ``port`` at 1200 baud: Arduino/TinyUSB boards reboot into their
    bootloader on it (the UF2 drive or the upload port appears)."""
    try:
        conn = serial.serial_for_url(port, baudrate=1200, do_not_open=True)
        conn.dtr = False
        conn.open()
        conn.dtr = False
        conn.close()
    except (OSError, serial.SerialException) as exc:
        log.info("1200-baud touch on %s: %s", port, exc)
    time.sleep(settle_s)
