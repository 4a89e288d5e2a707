"""The demo board: the built-in virtual board started inside the GUI process.

Used by ``tinyops gui --demo``, by plain ``tinyops`` when no board is plugged in, and by
kiosk mode as its fallback. The virtual board speaks the real protocol on a real
pseudo-terminal (or a local TCP socket), runs the bundled example model in TFLM, and
announces itself in the virtual-boards dir like any ``tinyops sim``.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from device_drivers.errors import Cancelled

if TYPE_CHECKING:  # the virtual board (smp, numpy) loads when the demo starts, not before
    from device_drivers.virtual import VirtualBoard

log = logging.getLogger(__name__)

DEMO_BOARD = "nano33ble"


class DemoBoard:
    """Owns one in-process virtual board. ``start`` blocks (run it in a job)."""

    def __init__(self, board: str = DEMO_BOARD) -> None:
        self.board_id = board
        self.board: VirtualBoard | None = None
        self.port: str | None = None
        self._lock = threading.Lock()

    @property
    def serial(self) -> str | None:
        board = self.board
        return board.serial if board is not None else None

    @property
    def running(self) -> bool:
        return self.port is not None

    def start(self, progress: Any = None, cancel: Any = None) -> str:
        """Start the board; returns its port. Safe to call twice (returns the same port)."""
        with self._lock:
            if self.port is not None:
                return self.port
            if progress:
                progress(0.1, "starting the virtual board…")
            from device_drivers.virtual import VirtualBoard

            board = VirtualBoard(board=self.board_id)
            port = board.start()
            if cancel is not None and cancel.is_set():
                board.stop()
                raise Cancelled("demo board start cancelled")
            self.board, self.port = board, str(port)
            log.info("demo board %s on %s", self.board_id, self.port)
            if progress:
                progress(1.0, f"virtual board on {self.port}")
            return self.port

    def stop(self) -> None:
        with self._lock:
            board, self.board, self.port = self.board, None, None
        if board is not None:
            try:
                board.stop()
            except Exception:
                log.warning("stopping the demo board failed", exc_info=True)
