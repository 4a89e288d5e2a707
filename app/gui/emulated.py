"""The emulated Cortex-M4: our runtime firmware (TFLM with CMSIS-NN) in QEMU's mps2-an386,
offered next to the demo board. Unlike the demo board (Python, the host's TFLM), its
inference runs Arm code: what a real board would compute, in an emulator.

Starting it builds the firmware if needed (cached by the hash of its inputs; a cold build
takes minutes, with progress), starts QEMU with its UART on a local TCP socket and, when the
board's storage holds no model yet, flashes the bundled example through the same
device-verified path as any flash. Everything runs in a worker (``start`` is a job)."""

from __future__ import annotations

import logging
import threading
from typing import Any

from tinyops_base.progress import sub_progress

log = logging.getLogger(__name__)

MACHINE = "mps2-an386"
CPU, KERNELS = "cortex-m4", "cmsis-nn"
NAME = "Emulated Cortex-M4 (QEMU)"
BOARD_ID = "qemu-mps2-an386"


class EmulatedBoard:
    """One QEMU machine running the firmware for this window (started on request)."""

    def __init__(self) -> None:
        self.board: Any = None
        self.port: str | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self.board is not None

    def start(self, progress: Any = None, cancel: Any = None) -> str:
        """Build (cached), boot, give it the example if it has no model; its port."""
        from device_drivers import paths
        from device_drivers.firmware import qemu
        from device_drivers.firmware.build import build

        progress = progress or (lambda _f, _m: None)
        with self._lock:
            if self.port is not None:
                return self.port
            built = build(CPU, KERNELS, "runtime", progress=sub_progress(progress, 0.0, 0.7),
                          cancel=cancel)
            progress(0.72, f"booting {NAME}…")
            board = qemu.start(built.elf, MACHINE, paths.data_dir() / "emulated" / MACHINE)
            try:
                _give_example(board.port, sub_progress(progress, 0.75, 1.0), cancel)
            except BaseException:
                board.stop()
                raise
            self.board, self.port = board, board.port
            log.info("%s on %s (%s)", NAME, board.port, built.elf)
            return board.port

    def stop(self) -> None:
        with self._lock:
            board, self.board, self.port = self.board, None, None
        if board is not None:
            board.stop()


def _give_example(port: str, progress: Any, cancel: Any) -> None:
    """Flash the bundled example if the board runs no model (it keeps one across starts)."""
    from device_drivers import paths
    from device_drivers.flashing import Artifact, flash
    from device_drivers.link.session import DeviceSession

    with DeviceSession.open(port) as dev:
        info = dev.model_info()
    if info is not None and info.loaded:
        progress(1.0, f"running {info.path}")
        return
    example = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"
    flash(Artifact.load(example), port, progress=progress, cancel=cancel)
