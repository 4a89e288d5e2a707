"""The virtual board: a real SMP server on a pseudo-terminal or TCP socket.

``VirtualBoard`` and ``FaultConfig`` are imported lazily, so the interpreter worker
(``python -m device_drivers.virtual.worker``) starts without loading the server.
"""

from __future__ import annotations

from typing import Any

__all__ = ["FaultConfig", "VirtualBoard", "parse_faults"]


def __getattr__(name: str) -> Any:
    if name == "VirtualBoard":
        from device_drivers.virtual.board import VirtualBoard

        return VirtualBoard
    if name in ("FaultConfig", "parse_faults"):
        from device_drivers.virtual import faults

        return getattr(faults, name)
    raise AttributeError(name)
