"""What tells one board from another, for the GUI's reconnects and the CLI's long sessions.

A connection is to a board, not to a path: a board that re-enumerates comes back at
another path, and another board can appear at the path a board left. What identifies a
board, strongest first:

- its USB serial number (hardware; a virtual board announces one too),
- the device's own id (``hw_id`` in the runtime's model-info: Zephyr's hwinfo device id),
- as a check only: the board kind (registry id) and the runtime's model sha256 — two
  boards of one kind running one model look alike, but a board whose kind or model
  differs from what was there is not the same one (unless a serial or id says it is).

:func:`same_board` answers True (same), False (another board) or None (nothing to tell
them apart with). No Qt: the GUI's ``DeviceLink`` and the CLI's ``monitor``/``bridge`` use
it alike.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class BoardIdentity:
    serial: str | None = None  # USB serial number
    hw_id: str | None = None  # the device's own id (model-info hw_id)
    board: str | None = None  # registry id the runtime reports
    model_sha256: str | None = None  # hex, the model the runtime runs

    @classmethod
    def of(cls, info: Any = None, serial: str | None = None) -> BoardIdentity:
        """From a model-info response or a ``LinkInfo`` (either may be None) and a serial."""
        sha = getattr(info, "sha256", None) or getattr(info, "model_sha256", None)
        if isinstance(sha, (bytes, bytearray)):
            sha = bytes(sha).hex()
        return cls(serial=serial or None, hw_id=getattr(info, "hw_id", None) or None,
                   board=getattr(info, "board", None) or None, model_sha256=sha or None)

    @property
    def known(self) -> bool:
        return any((self.serial, self.hw_id, self.board, self.model_sha256))

    def with_model(self, sha256: str | None) -> BoardIdentity:
        """The same board after a flash (its model changed on purpose)."""
        return replace(self, model_sha256=sha256)

    def merged(self, other: BoardIdentity) -> BoardIdentity:
        """What both say, ``other`` winning where it knows something."""
        return BoardIdentity(other.serial or self.serial, other.hw_id or self.hw_id,
                             other.board or self.board, other.model_sha256 or self.model_sha256)

    def describe(self) -> str:
        """A short name for messages: ``nrf52840dk SN 0682…`` (never a port)."""
        parts = [self.board or "board"]
        if self.serial:
            parts.append(f"SN {self.serial}")
        elif self.hw_id:
            parts.append(f"id {self.hw_id}")
        elif self.model_sha256:
            parts.append(f"model {self.model_sha256[:8]}")
        return " ".join(parts)


def same_board(expected: BoardIdentity | None, found: BoardIdentity | None) -> bool | None:
    """True if ``found`` is the board ``expected`` describes, False if it is another one,
    None if nothing tells them apart. The device's own id decides (it comes over the link,
    a listing may be stale), then the USB serial; without them a different board kind or
    model is another board."""
    if expected is None or found is None:
        return None
    for a, b in ((expected.hw_id, found.hw_id), (expected.serial, found.serial)):
        if a and b:
            return a == b
    for a, b in ((expected.board, found.board), (expected.model_sha256, found.model_sha256)):
        if a and b and a != b:
            return False
    if (expected.board and expected.board == found.board) or (
            expected.model_sha256 and expected.model_sha256 == found.model_sha256):
        return True
    return None
