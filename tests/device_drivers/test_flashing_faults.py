"""The fault matrix: every virtual-board fault switch × early/middle/late in the upload.

Invariant, for every run: either the flash succeeded and the device verified and runs the
new model, or the flash failed with a clear error and the board still runs the model it
had before. "Boards left without their previous model" must be 0.

The switches are turned on at the wanted point of the upload (from the progress
callback) through test hooks on the virtual board (its fault objects are swapped; the
board has no public API to change faults while running). ``disconnect-after`` is the
board's own construction-time budget, placed at the wanted share of the bytes a clean
flash sends.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

import pytest

from device_drivers import paths
from device_drivers.errors import TinyOpsError
from device_drivers.flashing import Artifact, FlashOptions, flash
from device_drivers.virtual import FaultConfig, VirtualBoard
from device_drivers.virtual.faults import FaultInjector, Pacer

BASE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()
OFFSETS = {"early": 0.1, "middle": 0.5, "late": 0.9}
BIG_PAD = 24_000  # a ~35 KB model: several chunks, so early/middle/late differ


def model(n: int) -> bytes:
    return BASE + b"\x00" * (BIG_PAD + 16 * n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Burst(FaultInjector):
    """Corrupt or drop the next ``count`` received lines/frames, then behave."""

    def __init__(self, kind: str, count: int) -> None:
        super().__init__(FaultConfig())
        self.kind, self.left = kind, count
        self._burst_lock = threading.Lock()

    def _take(self) -> bool:
        with self._burst_lock:
            if self.left <= 0:
                return False
            self.left -= 1
            return True

    def corrupt_line(self, line: bytes) -> tuple[bytes, bool]:
        if self.kind != "corrupt" or len(line) < 4 or not self._take():
            return line, False
        flipped = bytearray(line)
        flipped[len(line) // 2] ^= 0x04
        return bytes(flipped), True

    def drop_frame(self) -> bool:
        return self.kind == "drop" and self._take()


class DelayWindow:
    """A FaultConfig stand-in whose ``delay_ms`` applies to frames in a short window; every
    other switch reads as in a clean ``FaultConfig`` (so new switches need no change here)."""

    def __init__(self, ms: float, window_s: float = 0.05) -> None:
        self.ms, self.until = ms, time.monotonic() + window_s

    def __getattr__(self, name: str) -> object:
        return getattr(FaultConfig(), name)

    @property
    def delay_ms(self) -> float:
        return self.ms if time.monotonic() < self.until else 0.0


def switch_on(vb: VirtualBoard, fault: str) -> None:
    if fault in ("corrupt", "drop"):
        vb._injector = Burst(fault, 1)
    elif fault == "delay":
        vb.faults = DelayWindow(2500.0)  # longer than the per-chunk timeout (1.5 s)
    elif fault == "baud":
        vb._rx_pacer, vb._tx_pacer = Pacer(57_600), Pacer(57_600)


def switch_off(vb: VirtualBoard) -> None:
    vb._injector = FaultInjector(FaultConfig())
    vb.faults = FaultConfig()
    vb._rx_pacer, vb._tx_pacer = Pacer(None), Pacer(None)


@dataclass
class Run:
    fault: str
    where: str
    ok: bool
    error: str | None
    retries: str
    previous_kept: bool
    new_loaded: bool

    def row(self) -> str:
        return (f"  {self.fault:17s} {self.where:7s} {'ok  ' if self.ok else 'FAIL'} "
                f"{self.retries:18s} previous kept={self.previous_kept} "
                f"new loaded={self.new_loaded} {(self.error or '')[:70]}")


def _never_without_a_model(run: Run) -> None:
    """The headline of the matrix, checked on every run where it happens: a flash either
    ends verified with the new model loaded, or fails with the previous one still running."""
    print(run.row())
    assert (run.ok and run.new_loaded) or (not run.ok and run.previous_kept), run


def _flash_with_fault(vb: VirtualBoard, port: str, data: bytes, fault: str,
                      at: float) -> tuple[bool, str | None, str]:
    fired = threading.Event()

    def progress(fraction: float, message: str) -> None:
        """Fire when the upload itself (``off/total B``) passes ``at``."""
        sent, sep, rest = message.partition("/")
        if fault == "disconnect-after" or fired.is_set() or not sep or not sent.isdigit():
            return
        total = rest.split(" ", 1)[0]
        if total.isdigit() and int(sent) / int(total) >= at:
            fired.set()
            switch_on(vb, fault)

    try:
        # short timeouts keep the matrix fast; the slow-link run keeps the default ones
        scale = 1.0 if fault == "baud" else 0.5
        result = flash(Artifact.from_bytes(data, "m.tflite"), port, progress=progress,
                       options=FlashOptions(timeout_scale=scale))
        retries = next((n for n in result.notes if "retries" in n), "")
        return True, None, retries
    except TinyOpsError as exc:
        return False, exc.message, ""
    finally:
        switch_off(vb)


@pytest.fixture(scope="module")
def calibration() -> int:
    """Bytes a clean flash of a model(0)-sized file sends to the board."""
    with VirtualBoard(board="virtual") as vb:
        before = vb.bytes_rx
        flash(Artifact.from_bytes(model(0), "m.tflite"), vb.port)
        return vb.bytes_rx - before


@pytest.mark.parametrize("fault", ["corrupt", "drop", "delay", "baud"])
def test_link_faults_at_every_offset(fault: str) -> None:
    resumed = 0
    runs: list[Run] = []
    with VirtualBoard(board="virtual") as vb:
        for i, (where, at) in enumerate(OFFSETS.items(), start=1):
            previous = vb.loaded_model_sha256
            data = model(i)
            ok, error, retries = _flash_with_fault(vb, vb.port, data, fault, at)
            now = vb.loaded_model_sha256
            run = Run(fault, where, ok, error, retries, now == previous, now == sha(data))
            runs.append(run)
            _never_without_a_model(run)
            if fault in ("corrupt", "drop", "delay"):
                # a lost or late answer must be survived, not given up on
                assert ok and run.new_loaded, run
                resumed += bool(retries) and not retries.startswith("0 ")
    if fault in ("corrupt", "drop"):
        # With two chunks in flight a fault can land on a frame the window already
        # covered, or on the verify request (retried by the session); but at least one of
        # the three offsets must have been survived by resuming the upload.
        assert resumed >= 1, runs


@pytest.mark.parametrize("where", list(OFFSETS))
def test_cut_link_at_every_offset_keeps_the_previous_model(where: str,
                                                           calibration: int) -> None:
    budget = max(1, int(calibration * OFFSETS[where]))
    with VirtualBoard(board="virtual", faults=FaultConfig(disconnect_after=budget)) as vb:
        port = vb.port
        previous = vb.loaded_model_sha256
        data = model(7)
        ok, error, _ = _flash_with_fault(vb, port, data, "disconnect-after", 0.0)
        now = vb.loaded_model_sha256
        run = Run("disconnect-after", where, ok, error, "", now == previous, now == sha(data))
        _never_without_a_model(run)
        assert not ok and run.previous_kept, run
        assert error and ("lost" in error or "did not answer" in error), error
