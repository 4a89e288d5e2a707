"""``monitor`` and ``bridge`` keep to the board they started with.

A USB-UART bridge stays open when the board behind it is swapped, and a network port can
be answered by another board after a restart: the session goes on, the board does not.
:class:`IdentityWatch` asks the runtime who it is (model-info: ``hw_id``, board, model
sha256) at the start and again every ``every_s`` seconds, and hands telemetry on only
once a check *after* it was read has confirmed the board: when another board answers,
the batches since the last good check are dropped and :class:`BoardChanged` ends the
session with a message naming both boards. A board without the runtime (text only) has
nothing to check: its batches pass straight through.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from app.board_identity import BoardIdentity, same_board
from device_drivers.errors import DeviceError

log = logging.getLogger(__name__)

CHECK_S = 1.0


class BoardChanged(DeviceError):
    """Another board answered on the session's port."""


class IdentityWatch:
    def __init__(self, session: Any, port: str, every_s: float = CHECK_S) -> None:
        self.session, self.port, self.every_s = session, port, every_s
        self.identity = self._ask()
        self.pending: list[Any] = []
        self.dropped = 0  # batches held back and dropped because another board answered
        self._next = time.monotonic() + every_s
        self._own_models: set[str] = set()  # models this process is loading on purpose

    def expect_model(self, sha256: str) -> None:
        """This process is about to load ``sha256`` on the board (a bridge taking an update):
        the board running it is still ours. Without a device id or USB serial the model is
        what tells boards apart, so without this a bridge's own update would end it."""
        self._own_models.add(sha256)

    @property
    def active(self) -> bool:
        return self.identity is not None and self.identity.known

    def _ask(self) -> BoardIdentity | None:
        try:
            info = self.session.model_info()
        except Exception as exc:  # no runtime: nothing to check (text telemetry only)
            log.debug("no model info on %s: %s", self.port, exc)
            return None
        return BoardIdentity.of(info) if info is not None else None

    def confirm(self) -> None:
        """Ask again; :class:`BoardChanged` if another board answers (pending dropped)."""
        found = self._ask()
        self._next = time.monotonic() + self.every_s
        if (found is not None and self.identity is not None
                and found.model_sha256 in self._own_models
                and same_board(self.identity.with_model(found.model_sha256), found) is not False):
            self.identity = self.identity.with_model(found.model_sha256)  # our own update
        if found is not None and same_board(self.identity, found) is False:
            self.dropped += len(self.pending)
            self.pending.clear()
            assert self.identity is not None
            raise BoardChanged(
                f"another board answered on {self.port}: it was {self.identity.describe()}, "
                f"now {found.describe()}; stopped so that their data are not mixed",
                "check which board is connected, then start again")

    def add(self, batch: Any) -> list[Any]:
        """``batch`` read now; returns the batches confirmed to come from the board."""
        if not self.active:
            return [batch]
        self.pending.append(batch)
        if time.monotonic() < self._next:
            return []
        return self.flush()

    def flush(self) -> list[Any]:
        """Confirm now and return everything held back (at the end of a session)."""
        if not self.pending:
            return []
        if self.active:
            self.confirm()
        out, self.pending = self.pending, []
        return out
