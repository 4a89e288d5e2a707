"""The device link: one session per port, SMP requests via smpclient, telemetry on the side.

The names below are imported on first use (PEP 562), so that importing a light submodule
(``link.transport`` for the CLI's link options) does not load the session, numpy and the
telemetry stack: ``tinyops --version`` and the GUI's start pay only for what they use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device_drivers.link.files import UploadResult, download_file, upload_file, verify_file
    from device_drivers.link.session import DeviceSession, SMPErrorResponse

_WHERE = {
    "DeviceSession": "device_drivers.link.session",
    "SMPErrorResponse": "device_drivers.link.session",
    "UploadResult": "device_drivers.link.files",
    "download_file": "device_drivers.link.files",
    "upload_file": "device_drivers.link.files",
    "verify_file": "device_drivers.link.files",
}

__all__ = [
    "DeviceSession",
    "SMPErrorResponse",
    "UploadResult",
    "download_file",
    "upload_file",
    "verify_file",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
