"""Errors device_drivers raises: the shared base classes plus the device's own.

``TinyOpsError``, ``InputError`` and ``Cancelled`` come from ``tinyops_base.errors``
(re-exported here); each error carries what happened and what the user can do about it.
The CLI maps ``InputError`` to exit code 2 (bad usage or input) and every other
``TinyOpsError`` to exit code 1 (the operation failed). Neither prints a traceback.
"""

from __future__ import annotations

from tinyops_base.errors import Cancelled, InputError, TinyOpsError

__all__ = ["Cancelled", "DeviceError", "DisconnectedError", "InputError", "PortError",
           "TinyOpsError", "VerifyError"]


class PortError(InputError):
    """A serial port cannot be opened: missing, forbidden, busy, or not a serial device."""


class DeviceError(TinyOpsError):
    """The device answered with an error, or stopped answering."""


class DisconnectedError(DeviceError):
    """The link dropped (unplug, cable, board reset) while talking to the device."""


class VerifyError(DeviceError):
    """The device stored something other than what was sent."""
