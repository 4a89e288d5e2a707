"""The identification probe: a real virtual board answers; a silent device gets nothing risky."""

from __future__ import annotations

import contextlib
import os
import select
import struct
import time
import tty

import pytest
from smp import packet

from device_drivers.boards import DetectedBoard, probe, probe_detected
from device_drivers.errors import PortError

READ, WRITE = 0, 2
OS_GROUP, RUNTIME_GROUP = 0, 64
ECHO, PARAMS = 0, 6


def smp_frames(raw: bytes) -> list[tuple[int, int, int]]:
    """(op, group, command) of every SMP request in what the host wrote."""
    out = []
    decoder = None
    for line in raw.split(b"\n"):
        if not line:
            continue
        if line.startswith(b"\x06\x09"):
            decoder = packet.decode()
            next(decoder)
        if decoder is None:
            continue
        try:
            decoder.send(line + b"\n")
        except StopIteration as done:
            frame = done.value
            op = frame[0] & 0x07
            group, command = struct.unpack(">H", frame[4:6])[0], frame[7]
            out.append((op, group, command))
            decoder = None
    return out


@pytest.fixture
def silent_pty():
    master, slave = os.openpty()
    tty.setraw(slave)
    yield master, os.ttyname(slave)
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)


def drain(fd: int) -> bytes:
    data = b""
    while select.select([fd], [], [], 0.05)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data


def test_silent_device_gets_only_read_and_echo_requests(silent_pty) -> None:
    import device_drivers.link  # noqa: F401  (import cost is not the probe's)

    master, path = silent_pty
    started = time.monotonic()
    result = probe(path, timeout_s=0.3)
    elapsed = time.monotonic() - started
    assert not result.answered and not result.smp and result.runtime is None
    # console params (0.3 s), the raw-transport check on a silent port (it waits out
    # Zephyr's ~2 s raw input timeout, then 0.5 s for an answer), echo (0.3 s)
    assert elapsed < 4.5
    frames = smp_frames(drain(master))
    assert frames, "the probe sent nothing at all"
    allowed = {(READ, OS_GROUP, PARAMS), (WRITE, OS_GROUP, ECHO)}
    assert set(frames) <= allowed, frames
    assert all(group != RUNTIME_GROUP for _, group, _ in frames)


def test_missing_port_is_a_port_error() -> None:
    with pytest.raises(PortError) as info:
        probe("/dev/ttyNOPE42", timeout_s=0.2)
    assert info.value.exit_code == 2


def test_probe_identifies_a_real_virtual_board(tmp_path) -> None:
    from device_drivers.virtual.board import VirtualBoard

    with VirtualBoard("pico", state_dir=tmp_path, default_model=False) as sim:
        result = probe(sim.port, timeout_s=1.0)
        frames_ok = sim.frames_ok
    assert result.answered and result.smp
    assert result.params and result.params["buf_size"] > 0
    assert result.runtime and result.runtime.startswith("tinyops-runtime")
    assert result.board == "pico"
    assert result.model_loaded is False
    assert frames_ok >= 3  # params, echo, model-info
    assert result.to_dict()["requests"] == ["os.mcumgr_params (read)", "os.echo",
                                            "tinyops.model_info (read)"]


def test_probe_detected_skips_bootloaders_and_records_errors(silent_pty) -> None:
    _, path = silent_pty
    boot = DetectedBoard(port="/dev/ttyNOPE1", source="serial", mode="bootloader")
    gone = DetectedBoard(port="/dev/ttyNOPE2", source="serial", mode="app")
    quiet = DetectedBoard(port=path, source="serial", mode="unknown")
    probe_detected([boot, gone, quiet], timeout_s=0.2)
    assert boot.probe is None
    assert gone.probe is not None and "does not exist" in gone.probe.error
    assert quiet.probe is not None and quiet.probe.answered is False
