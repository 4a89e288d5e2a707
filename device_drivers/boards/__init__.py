"""Boards: the registry of real boards, detection, UF2 drives, hot-plug, doctor and aliases."""

from device_drivers.boards.registry import (
    Board,
    RegistryError,
    Region,
    RuntimeReserve,
    UsbId,
    get_board,
    load_registry,
    registry_problems,
)

__all__ = [
    "Board",
    "RegistryError",
    "Region",
    "RuntimeReserve",
    "UsbId",
    "get_board",
    "load_registry",
    "registry_problems",
]
