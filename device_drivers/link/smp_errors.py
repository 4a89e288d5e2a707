"""Readable text for SMP error responses (v1 ``rc`` and v2 ``err: {group, rc}``)."""

from __future__ import annotations

from enum import IntEnum

from smp import error as smperror
from smp import file_management, image_management, os_management, statistics_management
from smp import header as smphdr

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
