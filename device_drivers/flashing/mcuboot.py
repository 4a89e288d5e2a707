"""MCUboot on the device: image slots, the bootloader's mode, test/confirm/erase/reset.

Everything here is one SMP request (or a short wait) through a ``DeviceSession``; the
``tinyops image`` command and the smp back end's image flashing share it.

Mode: the OS group's bootloader-info command (``query=mode``) names MCUboot's mode. When
the firmware lacks that command (Zephyr's ``CONFIG_MCUMGR_GRP_OS_BOOTLOADER_INFO`` is off)
the image list tells what it can: MCUboot's serial recovery lists slots with only their
hash and version (an application's img-mgmt always adds bootable/active/confirmed...);
anything else stays ``unknown`` and is flashed the swap way (test, reset, confirm), which
is also correct for overwrite-only.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

from smp import os_management as osm
from smpclient.requests import image_management as imgreq
from smpclient.requests import os_management as osreq

from device_drivers.errors import DeviceError, InputError, TinyOpsError
from device_drivers.flashing.base import CancelToken, check_cancel
from device_drivers.link.session import DeviceSession, SMPErrorResponse
from device_drivers.mcuboot_image import ImageCheck, version_tuple

log = logging.getLogger(__name__)

# MCUboot's mode numbers (Zephyr's os_mgmt bootloader info, smp.os_management.MCUbootMode)
MODES: dict[int, tuple[str, str]] = {
    0: ("single-app", "single application slot"),
    1: ("swap", "swap using scratch"),
    2: ("overwrite-only", "overwrite only (no revert)"),
    3: ("swap", "swap using move"),
    4: ("direct-xip", "direct XIP without revert"),
    5: ("direct-xip-revert", "direct XIP with revert"),
    6: ("ram-load", "RAM load"),
    7: ("firmware-loader", "firmware loader"),
    8: ("ram-load", "single slot RAM load"),
    9: ("swap", "swap using offset"),
}
SWAP = "swap"
RECOVERY = "serial-recovery"
UNKNOWN = "unknown"
NO_IMG_GROUP = ("this firmware has no image management group (MCUmgr img): it cannot list, "
                "test or confirm images")
NO_IMG_HINT = ("build it with CONFIG_MCUMGR_GRP_IMG=y (and MCUboot), or flash it with the "
               "board's own tool (west flash, a debugger, its UF2/ROM bootloader)")


@dataclass(frozen=True)
class Slot:
    """One entry of the device's image list."""

    image: int
    slot: int
    version: str
    hash: str | None
    bootable: bool | None
    active: bool | None
    confirmed: bool | None
    pending: bool | None
    permanent: bool | None

    @property
    def flags(self) -> list[str]:
        return [name for name in ("active", "confirmed", "pending", "permanent")
                if getattr(self, name)] + ([] if self.bootable in (None, True)
                                           else ["not bootable"])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BootInfo:
    """What runs the board's boot: MCUboot's mode and where that knowledge came from."""

    mode: str
    """swap, overwrite-only, direct-xip, direct-xip-revert, ram-load, single-app,
    firmware-loader, serial-recovery or unknown."""
    detail: str
    source: str
    """``bootloader-info`` (the OS group said so), ``image list`` or ``none``."""
    bootloader: str | None = None
    mode_code: int | None = None
    no_downgrade: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class NoImageGroup(DeviceError):
    def __init__(self, port: str, reason: str) -> None:
        super().__init__(f"{port}: {NO_IMG_GROUP} ({reason})", NO_IMG_HINT)


def open_session(port: str, baudrate: int = 115200, timeout_s: float = 2.0,
                 link: Any = None) -> DeviceSession:
    """Open ``port`` (MCUboot's serial recovery refuses MCUmgr params: the session then
    keeps conservative frames). ``link``: LinkOptions from the command line, if any."""
    if link is not None and link.baudrate != baudrate:
        link = dataclasses.replace(link, baudrate=baudrate)
    return DeviceSession.open(port, baudrate=baudrate, timeout_s=timeout_s, options=link)


def _hex(value: Any) -> str | None:
    return bytes(value).hex() if value else None


def list_slots(dev: DeviceSession, timeout_s: float | None = None) -> list[Slot]:
    """The device's image list; ``NoImageGroup`` when the firmware has no img group."""
    try:
        states = dev.request(imgreq.ImageStatesRead(), timeout_s)
    except SMPErrorResponse as exc:
        if exc.not_supported or exc.group not in (None, 1):
            raise NoImageGroup(dev.port, exc.message) from exc
        raise
    return [Slot(image=int(s.image or 0), slot=int(s.slot), version=str(s.version),
                 hash=_hex(s.hash), bootable=s.bootable, active=s.active,
                 confirmed=s.confirmed, pending=s.pending, permanent=s.permanent)
            for s in states.images]


def slot_hash(slots: list[Slot], slot: int, image: int = 0) -> str | None:
    for s in slots:
        if s.slot == slot and s.image == image:
            return s.hash
    return None


def active_slot(slots: list[Slot], image: int = 0) -> Slot | None:
    """The running slot (slot 0 when the device marks none active, as recovery does)."""
    mine = [s for s in slots if s.image == image]
    return next((s for s in mine if s.active), None) or next(
        (s for s in mine if s.slot == 0), None)


def looks_like_recovery(slots: list[Slot]) -> bool:
    """MCUboot's serial recovery lists slots with hash and version only."""
    return bool(slots) and all(s.bootable is None and s.active is None and s.confirmed is None
                               for s in slots)


def bootloader_info(dev: DeviceSession) -> BootInfo:
    """Ask the OS group which bootloader runs and in which mode."""
    try:
        name = dev.request(osreq.BootloaderInformationRead()).bootloader
    except SMPErrorResponse as exc:
        return BootInfo(UNKNOWN, f"the firmware does not report its bootloader "
                        f"({exc.message.split(': ', 1)[-1]})", "none")
    if str(name).lower() != "mcuboot":
        return BootInfo(UNKNOWN, f"bootloader {name!r} is not MCUboot", "bootloader-info",
                        bootloader=str(name))
    try:
        answer = dev.request(osreq.BootloaderInformationRead(query="mode")).response
    except SMPErrorResponse as exc:
        return BootInfo(UNKNOWN, f"MCUboot does not report its mode ({exc.message})",
                        "bootloader-info", bootloader="MCUboot")
    if isinstance(answer, osm.MCUbootModeQueryResponse):
        code, no_downgrade = int(answer.mode), answer.no_downgrade
    elif isinstance(answer, dict) and isinstance(answer.get("mode"), int):
        code, no_downgrade = int(answer["mode"]), answer.get("no-downgrade")
    else:
        return BootInfo(UNKNOWN, f"MCUboot answered the mode query with {answer!r}",
                        "bootloader-info", bootloader="MCUboot")
    mode, detail = MODES.get(code, (UNKNOWN, f"MCUboot mode {code}"))
    return BootInfo(mode, detail, "bootloader-info", bootloader="MCUboot", mode_code=code,
                    no_downgrade=bool(no_downgrade) if no_downgrade is not None else None)


def detect_mode(dev: DeviceSession, slots: list[Slot] | None = None) -> BootInfo:
    """MCUboot's mode: the bootloader's own answer, else what the image list shows."""
    slots = list_slots(dev) if slots is None else slots
    if looks_like_recovery(slots):
        return BootInfo(RECOVERY, "MCUboot serial recovery (the image list has no state "
                        "flags)", "image list", bootloader="MCUboot")
    info = bootloader_info(dev)
    if info.mode != UNKNOWN:
        return info
    return BootInfo(UNKNOWN, f"{info.detail}; the image list shows an application with "
                    f"{len(slots)} slot(s): flashed the swap way (test, reset, confirm)",
                    "image list" if slots else info.source, bootloader=info.bootloader)


def set_state(dev: DeviceSession, digest: bytes | None, confirm: bool) -> list[Slot]:
    """Mark ``digest`` for a test boot (or confirm it); return the new image list."""
    try:
        dev.request(imgreq.ImageStatesWrite(hash=digest, confirm=confirm))
    except SMPErrorResponse as exc:
        what = "confirm" if confirm else "test"
        target = digest.hex()[:16] + "…" if digest else "the running image"
        raise DeviceError(f"{dev.port}: the device refused to {what} {target}: "
                          f"{exc.message.split(': ', 1)[-1]}",
                          "run `tinyops image list` to see the slots' hashes and state") \
            from exc
    return list_slots(dev)


def erase_slot(dev: DeviceSession, slot: int | None) -> list[Slot]:
    try:
        dev.request(imgreq.ImageErase(slot=slot), timeout_s=max(dev.timeout_s, 10.0))
    except SMPErrorResponse as exc:
        raise DeviceError(f"{dev.port}: the device refused to erase slot "
                          f"{1 if slot is None else slot}: {exc.message.split(': ', 1)[-1]}",
                          "only the slot that does not run can be erased, and not while "
                          "its image is pending or unconfirmed") from exc
    return list_slots(dev)


def reset(dev: DeviceSession, boot_mode: int | None = None) -> None:
    """Reset the board; a board that drops the link before answering is fine."""
    request = osreq.ResetWrite() if boot_mode is None else osreq.ResetWrite(boot_mode=boot_mode)
    try:
        dev.request(request, timeout_s=min(dev.timeout_s, 3.0))
    except SMPErrorResponse as exc:
        if exc.rc != 0:  # MCUboot's serial recovery answers a reset with {"rc": 0}
            raise
    except DeviceError as exc:  # no answer or a dropped link: it reset before replying
        log.info("%s: no answer to the reset (%s)", dev.port, exc.message)


def wait_for_slots(port: str, baudrate: int, timeout_s: float, cancel: CancelToken | None,
                   what: str, settle_s: float = 0.5, link: Any = None) -> list[Slot]:
    """After a reset: open the port until the board lists its images; return the list."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    time.sleep(settle_s)
    while time.monotonic() < deadline:
        check_cancel(cancel, what)
        try:
            with open_session(port, baudrate=baudrate, timeout_s=1.0, link=link) as dev:
                return list_slots(dev)
        except NoImageGroup:
            raise
        except TinyOpsError as exc:
            last = exc.message
        time.sleep(0.3)
    raise DeviceError(f"{port}: the board did not answer {what} within {timeout_s:.0f} s "
                      f"({last})", "reset the board by hand and run `tinyops image list`")


def enter_recovery(dev: DeviceSession) -> None:
    """Reset an application into MCUboot's serial recovery (OS reset with boot_mode)."""
    try:
        reset(dev, boot_mode=int(osm.BootMode.BOOTLOADER))
    except SMPErrorResponse as exc:
        raise DeviceError(f"{dev.port}: the firmware cannot reset into its bootloader "
                          f"({exc.message.split(': ', 1)[-1]})",
                          "enter MCUboot serial recovery by hand (hold the board's recovery "
                          "button while resetting it), then flash without --enter-recovery") \
            from exc


TEST_CONFIRM_MODES = (SWAP, UNKNOWN, "direct-xip-revert")
HIGHEST_VERSION_MODES = ("direct-xip", "direct-xip-revert", "ram-load")
RECOVERY_HINT = ("the firmware's reset ignores boot_mode (it needs CONFIG_RETENTION_BOOT_MODE "
                 "and MCUboot's CONFIG_BOOT_SERIAL_BOOT_MODE): hold the board's recovery "
                 "button while resetting it, then flash without --enter-recovery")


def refuse_impossible(port: str, info: BootInfo, check: ImageCheck, slots: list[Slot]) -> None:
    """Refuse, before any upload, what this MCUboot mode cannot do."""
    if info.mode in ("single-app", "firmware-loader"):
        raise InputError(f"{port}: MCUboot runs in {info.detail} mode: the application "
                         "cannot replace itself over SMP",
                         "flash it through MCUboot serial recovery: add --enter-recovery (or "
                         "hold the board's recovery button while resetting it)")
    running = active_slot(slots)
    if running is None:
        return
    new, old = check.version_tuple, version_tuple(running.version)
    if info.mode in HIGHEST_VERSION_MODES and new <= old and check.hash != running.hash:
        raise InputError(f"{port}: MCUboot ({info.detail}) boots the highest version: "
                         f"{check.name} is {check.version}, the board runs {running.version},"
                         " so the new image would never boot",
                         "sign it with a higher version (imgtool sign --version X.Y.Z)")
    if info.no_downgrade and new < old:
        raise InputError(f"{port}: MCUboot refuses downgrades and {check.name} is "
                         f"{check.version}, older than the running {running.version}",
                         "sign it with a version at least as high as the running one")
