"""What a board tells about itself, at the level it supports (``tinyops info``).

Everything comes from the device: the transport it answered on, its MCUmgr params, the
command groups it has (the enumeration group where present, probing otherwise), its image
slots and MCUboot mode (where it has the img group), and the TinyOps runtime.

It sits beside ``link`` and ``flashing``, above both (it asks through the link and reads the
image slots with flashing's ``mcuboot``): the link itself never imports flashing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from smp import message as smpmsg
from smpclient.requests import enumeration_management as enumreq
from smpclient.requests import file_management as fsreq
from smpclient.requests import image_management as imgreq
from smpclient.requests import os_management as osreq
from smpclient.requests import statistics_management as statreq

from device_drivers.errors import DeviceError
from device_drivers.link.smp_errors import GROUPS, SMPErrorResponse
from device_drivers.protocol import runtime

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

# one harmless read per group, for firmware without the enumeration group
_PROBES: dict[int, Callable[[], smpmsg.Request]] = {
    0: lambda: osreq.EchoWrite(d="tinyops"),
    1: imgreq.ImageStatesRead,
    2: statreq.ListOfGroups,
    8: fsreq.SupportedFileHashChecksumTypes,
    runtime.GROUP_ID: runtime.ModelInfo,
}


def group_name(group: int) -> str:
    return GROUPS.get(int(group), (f"group {int(group)}", "", ""))[0]


def supported_groups(session: DeviceSession,
                     timeout_s: float | None = None) -> tuple[list[int], str]:
    """(group ids, how they were found): ``enumeration`` or ``probing``."""
    try:
        listed = session.request(enumreq.ListSupportedGroups(), timeout_s)
        return sorted(int(g) for g in listed.groups), "enumeration"
    except SMPErrorResponse:
        pass
    found = []
    for group, make in _PROBES.items():
        try:
            session.request(make(), timeout_s)
        except SMPErrorResponse as exc:
            if exc.not_supported:
                continue  # ENOTSUP: the group (or this read of it) is not built in
        except DeviceError:
            if not session.connected:
                raise
            continue
        found.append(group)
    return found, "probing"


def device_info(session: DeviceSession) -> dict[str, Any]:
    """Everything a board tells about itself, at the level it supports."""
    out: dict[str, Any] = {"port": session.port, "smp": False, "runtime": None,
                           "transport": session.transport_kind}
    quick = min(session.timeout_s, 1.5)
    try:
        session.echo("tinyops", timeout_s=quick)
        out["smp"] = True
    except SMPErrorResponse:
        out["smp"] = True  # it answered (MCUboot's recovery has no echo): SMP it is
    except DeviceError as exc:
        if not session.connected:
            raise
        if not session.answered:
            out["smp_error"] = exc.message
            return out
        out["smp"] = True
    out["params"] = session.params()
    groups, source = supported_groups(session, quick)
    out["groups"] = [group_name(g) for g in groups]
    out["groups_source"] = source
    out["app_info"] = session.app_info() if 0 in groups or source == "probing" else None
    if 1 in groups:
        _images(session, out)
    if runtime.GROUP_ID in groups:
        _runtime(session, out)
    return out


def _images(session: DeviceSession, out: dict[str, Any]) -> None:
    from device_drivers.flashing import mcuboot  # lazy: only boards with the img group

    try:
        slots = mcuboot.list_slots(session)
        boot = mcuboot.detect_mode(session, slots)
    except DeviceError as exc:
        if not session.connected:
            raise
        out["images_error"] = exc.message
        return
    out["images"] = [s.to_dict() for s in slots]
    out["bootloader"] = boot.to_dict()


def _runtime(session: DeviceSession, out: dict[str, Any]) -> None:
    info = session.model_info()
    if info is None:
        return
    out["runtime"] = info.runtime
    out["protocol"] = info.protocol
    out["board"] = info.board
    out["default_path"] = info.default_path
    out["arena_size"] = info.arena_size
    out["model"] = None
    if info.loaded:
        out["model"] = {
            "path": info.path,
            "sha256": info.sha256.hex() if info.sha256 else None,
            "size": info.size,
            "arena_used": info.arena_used,
            "inputs": [s.model_dump() for s in info.inputs or []],
            "outputs": [s.model_dump() for s in info.outputs or []],
            "labels": info.labels,
        }
