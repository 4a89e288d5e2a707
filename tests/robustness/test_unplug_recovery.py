"""Pulling the cable mid-stream and mid-flash: the session ends cleanly, nothing hangs, the
board keeps a verified model, and a new session on the re-plugged port works at once.

The virtual board's ``disconnect-after`` fault pulls the cable when it has received that many
bytes from the host; the pty then re-appears under a new path, like a re-enumerated USB
device. Every "after" is checked through a *new* session, as a user would reconnect.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from device_drivers import paths
from device_drivers.errors import DeviceError, DisconnectedError, TinyOpsError
from device_drivers.flashing import Artifact, FlashOptions, flash
from device_drivers.link import DeviceSession
from device_drivers.virtual import FaultConfig, VirtualBoard

BASE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()


def model(n: int) -> bytes:
    return BASE + b"\x00" * 20_000 + n.to_bytes(4, "little")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TINYOPS_HOME", str(tmp_path_factory.mktemp("home")))
        with VirtualBoard(board="virtual", state_dir=tmp_path_factory.mktemp("board")) as vb:
            yield vb


def replugged(board: VirtualBoard, links_before: int, timeout: float = 5.0) -> str:
    """The port once the board is plugged in again (the pty may get the same number)."""
    deadline = time.monotonic() + timeout
    while board.counters.links <= links_before:
        assert time.monotonic() < deadline, "the board did not come back"
        time.sleep(0.02)
    return str(board.port)


def switch(board: VirtualBoard, faults: FaultConfig | None = None) -> None:
    """Change the cable (default: a good one), once the board's link thread says it took
    the switch (its next receive round): bytes already being read met the old cable."""
    board.set_faults(faults or FaultConfig(), applied_within=10)


def running_model(port: str) -> str | None:
    with DeviceSession.open(port, timeout_s=2.0) as s:
        info = s.model_info()
        assert info is not None
        return bytes(info.sha256).hex() if info.loaded else None


def test_unplug_mid_stream_ends_the_reader_and_a_new_session_streams(board: VirtualBoard
                                                                     ) -> None:
    before = board.loaded_model_sha256
    old_port, links = board.port, board.counters.links
    s = DeviceSession.open(old_port, timeout_s=1.0)
    lost: list[str] = []
    s.on_disconnect = lost.append
    batches = []
    stop = threading.Event()

    def reader() -> None:  # what the GUI's reader thread does
        while not stop.is_set() and s.connected:
            batches.append(s.telemetry())
            time.sleep(0.015)

    thread = threading.Thread(target=reader, daemon=True)
    try:
        s.stream(True, period_ms=10)
        thread.start()
        deadline = time.monotonic() + 5
        while sum(len(b.channels.get("latency_us", ((), ()))[1]) for b in batches) < 10:
            assert time.monotonic() < deadline, "no telemetry before the unplug"
            time.sleep(0.02)
        switch(board, FaultConfig(disconnect_after=1))  # the next host byte pulls it
        with pytest.raises((DisconnectedError, DeviceError)):
            s.stats()
        thread.join(timeout=3)
        assert not thread.is_alive(), "the reader did not notice the unplug"
        assert not s.connected and lost, "no disconnect was reported"
        started = time.monotonic()
        with pytest.raises(DisconnectedError, match="lost"):
            s.echo("still there?")
        assert time.monotonic() - started < 0.5, "a call after the unplug waited"
        s.telemetry()  # what was parsed before the unplug can still be drained
    finally:
        stop.set()
        s.close()
        switch(board)
    port = replugged(board, links)
    with DeviceSession.open(port, timeout_s=2.0) as again:
        again.stream(True, period_ms=20)
        deadline = time.monotonic() + 5
        points = 0
        while points < 5:
            assert time.monotonic() < deadline, "no telemetry after the replug"
            time.sleep(0.05)
            points += len(again.telemetry().channels.get("latency_us", ((), ()))[1])
        again.stream(False)
        info = again.model_info()
        assert info is not None and bytes(info.sha256).hex() == before


@pytest.mark.parametrize("share", [0.1, 0.5, 0.9])
def test_unplug_mid_flash_keeps_the_old_model_and_reflashing_works(board: VirtualBoard,
                                                                   share: float) -> None:
    data = model(int(share * 100))
    # bytes a clean flash of this size sends
    probe = model(999)
    # the first flash on a port measures the frames the board takes (echo probes); later
    # ones reuse that plan, so the calibration is the second of two clean flashes
    flash(Artifact.from_bytes(model(998), "warm.tflite"), board.port)
    rx = board.bytes_rx
    flash(Artifact.from_bytes(probe, "probe.tflite"), board.port)
    clean = board.bytes_rx - rx
    before = board.loaded_model_sha256
    assert before == sha(probe)

    old_port, links = board.port, board.counters.links
    switch(board, FaultConfig(disconnect_after=int(share * clean)))
    try:
        with pytest.raises(TinyOpsError) as info:
            flash(Artifact.from_bytes(data, "new.tflite"), old_port,
                  options=FlashOptions(timeout_scale=0.5))
    finally:
        switch(board)
    assert "lost" in info.value.message or "did not answer" in info.value.message
    port = replugged(board, links)
    assert board.loaded_model_sha256 == before  # still the old one, intact
    assert running_model(port) == before

    result = flash(Artifact.from_bytes(data, "new.tflite"), port)
    assert result.ok and result.verified
    assert board.loaded_model_sha256 == sha(data) == running_model(port)


def test_unplug_around_load_model_leaves_old_or_new_never_neither(board: VirtualBoard) -> None:
    probe = model(8)
    flash(Artifact.from_bytes(model(7), "warm.tflite"), board.port)  # frames
    rx = board.bytes_rx
    flash(Artifact.from_bytes(probe, "probe.tflite"), board.port)
    clean = board.bytes_rx - rx
    # a flash ends with load-model (~90 B on the wire) and model-info (~25 B): cut 60 B before
    # the end (inside load-model: it never runs) and 20 B before (inside model-info: the new
    # model was loaded, but the host never hears it)
    for back, n in ((60, 9), (20, 10)):
        before = board.loaded_model_sha256
        data = model(n)
        links = board.counters.links
        switch(board, FaultConfig(disconnect_after=clean - back))
        try:
            with pytest.raises(TinyOpsError, match="lost"):
                flash(Artifact.from_bytes(data, "x.tflite"), board.port,
                      options=FlashOptions(timeout_scale=0.5))
        finally:
            switch(board)
        port = replugged(board, links)
        running = running_model(port)
        assert running == board.loaded_model_sha256
        assert running == (before if back == 60 else sha(data)), f"cut {back} B before the end"
    # whatever the host was told, flashing again gives a verified result
    data = model(11)
    result = flash(Artifact.from_bytes(data, "again.tflite"), board.port)
    assert result.ok and result.verified and board.loaded_model_sha256 == sha(data)
