"""The flash and RAM limits the virtual board enforces, taken from the board registry.

The registry (``device_drivers.boards``) may be absent or fail to load; the virtual board
then impersonates a built-in Arduino Nano 33 BLE (nRF52840: 1 MiB flash, 256 KiB RAM).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

from device_drivers.errors import InputError

log = logging.getLogger(__name__)

KiB = 1024


@dataclass(frozen=True)
class BoardLimits:
    """What the impersonated board has, and what the runtime firmware keeps for itself."""

    id: str
    name: str
    mcu: str
    flash: int
    ram: int
    flash_reserve: int
    """Flash the runtime firmware occupies (also the size of each MCUboot image slot)."""
    ram_reserve: int
    """RAM the runtime keeps for its stacks, heap and SMP buffers; the rest is tensor arena."""
    model_max: int | None = None
    """Size of the board's model region, if it has one; else the model may fill storage."""

    def __post_init__(self) -> None:
        if self.flash <= self.flash_reserve or self.ram <= self.ram_reserve:
            raise InputError(f"board {self.id!r} has no room for a model "
                             f"(flash {self.flash}, RAM {self.ram})",
                             "pick a board with known flash and RAM sizes")

    @property
    def arena_size(self) -> int:
        return self.ram - self.ram_reserve

    @property
    def storage_size(self) -> int:
        """The file system partition: flash the firmware does not use."""
        return self.flash - self.flash_reserve

    @property
    def model_limit(self) -> int:
        return min(self.model_max or self.storage_size, self.storage_size)

    @property
    def slot_size(self) -> int:
        return self.flash_reserve


DEFAULT = BoardLimits(
    id="nano33ble", name="Arduino Nano 33 BLE (built-in profile)", mcu="nRF52840",
    flash=1024 * KiB, ram=256 * KiB, flash_reserve=256 * KiB, ram_reserve=64 * KiB,
)
"""Impersonated when the registry is unavailable; ``virtual`` maps to it as well."""


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def _registry() -> Any | None:
    """The registry module if it imports and loads, else None (it is optional here)."""
    try:
        from device_drivers import boards  # optional: written separately

        boards.load_registry()
        return boards
    except Exception as exc:  # missing, or broken: the simulator still runs
        log.debug("board registry unavailable: %s", exc)
        return None


def known_board_ids() -> list[str]:
    ids = {"virtual", DEFAULT.id}
    registry = _registry()
    if registry is not None:
        ids.update(str(_field(b, "id")) for b in registry.load_registry())
    return sorted(ids)


def resolve_board(board_id: str = "virtual") -> BoardLimits:
    """Limits for registry board ``board_id``; InputError (with the choices) if unknown."""
    registry = _registry()
    board = None
    if registry is not None:
        try:
            board = registry.get_board(board_id)
        except Exception:  # unknown id (KeyError, InputError, ...)
            board = None
    if board is None:
        if board_id in ("virtual", DEFAULT.id):
            return _renamed(DEFAULT, board_id)
        if registry is not None:
            raise InputError(f"unknown board {board_id!r}",
                             "known boards: " + ", ".join(known_board_ids()))
        log.warning("board registry unavailable: %s gets the %s profile", board_id, DEFAULT.id)
        return _renamed(DEFAULT, board_id)
    flash = int(_field(board, "flash", 0) or 0)
    ram = int(_field(board, "ram", 0) or 0)
    if not flash or not ram:
        if board_id == "virtual":
            return _renamed(DEFAULT, board_id)
        raise InputError(f"board {board_id!r} has unknown flash/RAM sizes",
                         "the virtual board needs both; pick another --board")
    reserve = _field(board, "runtime_reserve")
    flash_reserve = int(_field(reserve, "flash", 0) or 0) or flash // 4
    ram_reserve = int(_field(reserve, "ram", 0) or 0) or ram // 4
    model_max = _field(_field(board, "model_region"), "size")
    return BoardLimits(
        id=board_id, name=str(_field(board, "name", board_id)), mcu=str(_field(board, "mcu", "?")),
        flash=flash, ram=ram, flash_reserve=min(flash_reserve, flash - 4 * KiB),
        ram_reserve=min(ram_reserve, ram - 4 * KiB),
        model_max=int(model_max) if model_max else None,
    )


def _renamed(limits: BoardLimits, board_id: str) -> BoardLimits:
    if board_id == limits.id:
        return limits
    return replace(limits, id=board_id, name=f"virtual board ({limits.name})")
