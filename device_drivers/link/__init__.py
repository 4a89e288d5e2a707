"""The device link: one session per port, SMP requests via smpclient, telemetry on the side."""

from device_drivers.link.files import UploadResult, download_file, upload_file, verify_file
from device_drivers.link.session import DeviceSession, SMPErrorResponse

__all__ = [
    "DeviceSession",
    "SMPErrorResponse",
    "UploadResult",
    "download_file",
    "upload_file",
    "verify_file",
]
