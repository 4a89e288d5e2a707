"""A safe identification probe: does the device on this port speak SMP / the TinyOps runtime?

It sends only requests that change nothing on a device: MCUmgr parameters (read) and an
SMP echo (answered, never stored); only a device that answered one of them is also asked
the runtime's model-info (read). No image, file or setting is ever written. Every request
has a short timeout, so a board that only prints text (or nothing) costs two timeouts.

Ports in bootloader mode, UF2 drives and URL-less unknown devices are not probed here; the
caller decides (``probe_detected``) — a bootloader can misread bytes it does not expect.
Note: opening a port toggles DTR/RTS on most OSes, which resets some boards (classic
ESP32 dev kits, Arduino Uno); that is why probing is opt-in (``tinyops boards --probe``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from device_drivers.boards.detect import DetectedBoard
from device_drivers.errors import DeviceError, TinyOpsError

log = logging.getLogger(__name__)

ECHO_TEXT = "tinyops-probe"


@dataclass
class ProbeResult:
    port: str
    answered: bool = False
    smp: bool = False
    params: dict[str, int] | None = None
    runtime: str | None = None
    board: str | None = None  # registry id the runtime says it was built for
    model_loaded: bool | None = None
    model_path: str | None = None
    error: str | None = None
    elapsed_s: float = 0.0
    requests: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"port": self.port, "answered": self.answered, "smp": self.smp,
                "params": self.params, "runtime": self.runtime, "board": self.board,
                "model_loaded": self.model_loaded, "model_path": self.model_path,
                "error": self.error, "elapsed_s": round(self.elapsed_s, 3),
                "requests": list(self.requests)}


def probe(port: str, timeout_s: float = 0.5) -> ProbeResult:
    """Ask the device on ``port`` who it is, read-only, each request bounded by ``timeout_s``.

    Raises PortError (exit 2) when the port cannot be opened; a device that does not answer
    is a result (``answered=False``), not an error.
    """
    from device_drivers.link import DeviceSession  # lazy: the link pulls in smpclient

    result = ProbeResult(port=port)
    started = time.monotonic()
    try:
        session = DeviceSession.open(port, timeout_s=timeout_s, read_params=True)
    except TinyOpsError:
        raise
    try:
        result.requests.append("os.mcumgr_params (read)")
        result.params = session.params()
        if result.params is not None:
            result.answered = result.smp = True
        result.requests.append("os.echo")
        try:
            reply = session.echo(ECHO_TEXT, timeout_s=timeout_s)
            result.answered = result.smp = reply == ECHO_TEXT or result.smp
        except DeviceError as exc:
            result.error = str(exc)
        if result.smp:  # only a device that answered SMP is asked anything else
            result.requests.append("tinyops.model_info (read)")
            try:
                info = session.model_info(timeout_s=timeout_s)
            except DeviceError as exc:
                info = None
                result.error = str(exc)
            if info is not None:
                result.runtime = info.runtime
                result.board = info.board
                result.model_loaded = info.loaded
                result.model_path = info.path
    finally:
        session.close()
        result.elapsed_s = time.monotonic() - started
    return result


def should_probe(item: DetectedBoard) -> bool:
    """Probe serial ports and virtual boards that are not known to sit in a bootloader."""
    return item.source in ("serial", "virtual") and item.mode != "bootloader"


def probe_detected(items: list[DetectedBoard], timeout_s: float = 0.5) -> list[DetectedBoard]:
    """Attach a ProbeResult to every probe-able item (errors recorded, never raised).

    Ports are probed in parallel (one thread each), so silent ports cost one probe's time.
    """
    from concurrent.futures import ThreadPoolExecutor

    todo = [item for item in items if should_probe(item)]

    def one(item: DetectedBoard) -> None:
        try:
            item.probe = probe(item.port, timeout_s)
        except TinyOpsError as exc:
            item.probe = ProbeResult(port=item.port, error=str(exc))
        if item.probe.board and item.probe.board != (item.board.id if item.board else None):
            _promote(item, item.probe.board)

    if todo:
        with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
            list(pool.map(one, todo))
    return items


def _promote(item: DetectedBoard, board_id: str) -> None:
    """The runtime named its board: put that candidate first (added if it was not listed)."""
    from device_drivers.boards.detect import Candidate
    from device_drivers.boards.registry import load_registry

    board = next((b for b in load_registry() if b.id == board_id), None)
    if board is None:
        return
    rest = [c for c in item.candidates if c.board.id != board_id]
    item.candidates = [Candidate(board, 0.99, "app", "the TinyOps runtime reports this board"),
                       *rest]
    item.mode = "app"
