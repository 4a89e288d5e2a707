"""Boards: the registry of real boards, detection, UF2 drives, hot-plug, doctor and aliases.

Public API (import from here):

- registry: ``load_registry()``, ``get_board(id)``, ``Board``
- detection: ``scan()`` (serial ports + UF2 drives + virtual boards), ``identify(record,
  registry)``, ``PortRecord``, ``DetectedBoard``, ``Candidate``, ``resolve_port(text)``
- hot-plug: ``BoardWatcher(callback).start()/.stop()``, ``watch()``, ``BoardEvent``
- identification: ``probe(port)``, ``probe_detected(items)``, ``ProbeResult``
- doctor: ``run_doctor()``, ``DoctorReport``, ``Check``
- aliases: ``load_aliases()``, ``set_alias(serial, name)``, ``remove_alias(serial)``
"""

from device_drivers.boards.aliases import load_aliases, remove_alias, set_alias
from device_drivers.boards.detect import (
    Candidate,
    DetectedBoard,
    PortRecord,
    detect_serial,
    identify,
)
from device_drivers.boards.doctor import Check, DoctorEnv, DoctorReport, run_doctor
from device_drivers.boards.probe import ProbeResult, probe, probe_detected
from device_drivers.boards.registry import (
    Board,
    Region,
    RegistryError,
    RuntimeReserve,
    UsbId,
    get_board,
    load_registry,
    registry_problems,
)
from device_drivers.boards.scan import resolve_port, scan
from device_drivers.boards.uf2 import Uf2Info, find_uf2_drives, parse_info_uf2
from device_drivers.boards.watcher import BoardEvent, BoardWatcher, watch

__all__ = [
    "Board",
    "BoardEvent",
    "BoardWatcher",
    "Candidate",
    "Check",
    "DetectedBoard",
    "DoctorEnv",
    "DoctorReport",
    "PortRecord",
    "ProbeResult",
    "Region",
    "RegistryError",
    "RuntimeReserve",
    "Uf2Info",
    "UsbId",
    "detect_serial",
    "find_uf2_drives",
    "get_board",
    "identify",
    "load_aliases",
    "load_registry",
    "parse_info_uf2",
    "probe",
    "probe_detected",
    "registry_problems",
    "remove_alias",
    "resolve_port",
    "run_doctor",
    "scan",
    "set_alias",
    "watch",
]
