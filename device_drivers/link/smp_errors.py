"""Readable text for SMP error responses (v1 ``rc`` and v2 ``err: {group, rc}``)."""

from __future__ import annotations

import dataclasses
from enum import IntEnum
from typing import Any

import cbor2
from pydantic import ValidationError
from smp import error as smperror
from smp import exceptions as smpexc
from smp import file_management, image_management, os_management, statistics_management
from smp import header as smphdr

from device_drivers.errors import DeviceError
from device_drivers.protocol import runtime

_GROUP_RC: dict[int, type[IntEnum]] = {
    int(smphdr.GroupId.OS_MANAGEMENT): os_management.OS_MGMT_RET_RC,
    int(smphdr.GroupId.IMAGE_MANAGEMENT): image_management.IMG_MGMT_ERR,
    int(smphdr.GroupId.FILE_MANAGEMENT): file_management.FS_MGMT_ERR,
    int(smphdr.GroupId.STATISTICS_MANAGEMENT): statistics_management.STAT_MGMT_ERR,
    runtime.GROUP_ID: runtime.RUNTIME_ERR,
}


def rc_name(group: int, rc: int) -> str:
    enum = _GROUP_RC.get(int(group))
    if enum is not None:
        try:
            return enum(int(rc)).name
        except ValueError:
            pass
    return f"rc={int(rc)}"


def describe(response: object) -> tuple[str, int, int | None]:
    """(text, rc, group or None) for an SMP error response."""
    if isinstance(response, smperror.ErrorV2):
        group, rc = int(response.err.group), int(response.err.rc)
        return rc_name(group, rc), rc, group
    rc = int(getattr(response, "rc", 1))
    rsn = getattr(response, "rsn", None)
    try:
        text = smperror.MGMT_ERR(rc).name
    except ValueError:
        text = f"rc={rc}"
    return (f"{text}: {rsn}" if rsn else text), rc, None


def is_not_supported(response: object) -> bool:
    """True when the device says it does not implement the group or command."""
    if isinstance(response, smperror.ErrorV1):
        return int(response.rc) == int(smperror.MGMT_ERR.ENOTSUP)
    return False


# ------------------------------------------------------------------ error responses
GROUPS: dict[int, tuple[str, str, str]] = {
    0: ("os", "OS management", "CONFIG_MCUMGR_GRP_OS"),
    1: ("img", "image management", "CONFIG_MCUMGR_GRP_IMG"),
    2: ("stat", "statistics", "CONFIG_MCUMGR_GRP_STAT"),
    3: ("settings", "settings", "CONFIG_MCUMGR_GRP_SETTINGS"),
    8: ("fs", "file management", "CONFIG_MCUMGR_GRP_FS"),
    9: ("shell", "shell", "CONFIG_MCUMGR_GRP_SHELL"),
    10: ("enum", "enumeration", "CONFIG_MCUMGR_GRP_ENUM"),
    63: ("zbasic", "Zephyr basic", "CONFIG_MCUMGR_GRP_ZBASIC"),
    runtime.GROUP_ID: ("tinyops", "TinyOps runtime", "the TinyOps runtime firmware"),
}


def group_label(group: int) -> str:
    short, name, _ = GROUPS.get(int(group), (f"group {int(group)}", f"group {int(group)}", ""))
    return f"{name} group (MCUmgr {short})"


def missing_group_hint(group: int) -> str:
    _, _, config = GROUPS.get(int(group), ("", "", ""))
    if int(group) == runtime.GROUP_ID:
        return "flash the TinyOps runtime firmware to load and run models on the board"
    enable = f"build the firmware with {config}=y" if config else "enable it in the firmware"
    return f"{enable}, or use a back end that does not need it"


class SMPErrorResponse(DeviceError):
    """The device answered a request with an SMP error."""

    def __init__(self, request: object, response: object) -> None:
        text, rc, group = describe(response)
        header = getattr(request, "header", None)
        request_group = int(header.group_id) if header is not None else None
        self.response = response
        self.rc = rc
        self.group = group
        self.not_supported = is_not_supported(response)
        name = type(request).__name__
        if self.not_supported and request_group is not None:
            # v1 rc 8 for a whole group that is not built in (Zephyr's answer)
            super().__init__(f"this firmware does not support {name}: it has no "
                             f"{group_label(request_group)}, or that group lacks the command",
                             missing_group_hint(request_group))
            self.missing_group: int | None = request_group
        else:
            super().__init__(f"the device refused {name}: {text}")
            self.missing_group = None


class UnexpectedResponse(DeviceError):
    """The device answered, but not with this request's response or error shape."""


_PARSE_ERRORS = (ValidationError, smpexc.SMPException, ValueError, TypeError)


def parse_response(request: Any, frame: bytes) -> Any:
    """The request's response, its v1 or v2 error, or UnexpectedResponse.

    Zephyr adds fields to some errors that smpclient's error classes forbid (its fs upload
    answers a wrong offset with ``{"err": {...}, "len": <expected offset>}``): such an
    error is read with the extra fields set aside in ``extra``.
    """
    for kind in (request._Response, request._ErrorV1, request._ErrorV2):
        try:
            return kind.loads(frame)
        except _PARSE_ERRORS:
            continue
    lenient = _error_with_extras(request, frame)
    if lenient is not None:
        return lenient
    raise UnexpectedResponse(
        f"the device sent a response that does not match {type(request).__name__}",
        "the board may run a different SMP server version; see the log for the frame",
    )


def _error_with_extras(request: Any, frame: bytes) -> Any:
    try:
        body = cbor2.loads(frame[smphdr.Header.SIZE:])
        header = smphdr.Header.loads(frame[: smphdr.Header.SIZE])
    except (ValueError, cbor2.CBORDecodeError, smpexc.SMPException):
        return None
    if not isinstance(body, dict):
        return None
    for key, kind in (("err", request._ErrorV2), ("rc", request._ErrorV1)):
        if key in body:
            known = {k: v for k, v in body.items() if k in ("err", "rc", "rsn")}
            try:  # the header's length must match the fields kept
                fixed = dataclasses.replace(header, length=len(cbor2.dumps(known)))
                error = kind.load(fixed, known)
            except _PARSE_ERRORS:
                return None
            object.__setattr__(error, "extra", {k: v for k, v in body.items()
                                                if k not in known})
            return error
    return None
