"""Device session behaviour that needs no SMP server: port errors, silence, unplug, text-only."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import threading
import time

import pytest

from device_drivers.errors import DeviceError, DisconnectedError, PortError
from device_drivers.link import DeviceSession


def test_missing_port_is_a_port_error_with_a_fix() -> None:
    with pytest.raises(PortError) as info:
        DeviceSession.open("/dev/ttyDOESNOTEXIST0", timeout_s=0.5)
    assert "does not exist" in str(info.value)
    assert info.value.exit_code == 2
    assert info.value.hint


def test_refused_tcp_port_is_a_port_error() -> None:
    with pytest.raises(PortError) as info:
        DeviceSession.open("socket://127.0.0.1:9", timeout_s=0.5)
    assert "127.0.0.1:9" in str(info.value)


def test_silent_device_times_out_instead_of_hanging(pty_pair) -> None:
    _, path = pty_pair
    started = time.monotonic()
    with DeviceSession.open(path, timeout_s=0.3) as session:
        assert session.params() is None
        with pytest.raises(DeviceError, match="did not answer"):
            session.echo("hello")
    assert time.monotonic() - started < 5.0


def test_second_owner_of_a_port_is_refused(pty_pair) -> None:
    _, path = pty_pair
    with DeviceSession.open(path, timeout_s=0.2, read_params=False), \
            pytest.raises(PortError, match="busy"):
        DeviceSession.open(path, timeout_s=0.2, read_params=False)


def test_text_between_frames_becomes_telemetry(pty_pair) -> None:
    master, path = pty_pair
    with DeviceSession.open(path, timeout_s=0.3, read_params=False) as session:
        os.write(master, b"partial-first-line\n")
        for i in range(20):
            os.write(master, f'{{"t": {i * 10}, "scores": {{"a": 0.9, "b": 0.1}}, '
                             f'"latency_us": {1000 + i}}}\n'.encode())
        deadline = time.monotonic() + 3
        counts = 0
        last_latency = None
        while time.monotonic() < deadline and counts < 20:
            time.sleep(0.05)
            batch = session.telemetry()
            if "latency_us" in batch.channels:
                counts += len(batch.channels["latency_us"][1])
                last_latency = batch.channels["latency_us"][1][-1]
        assert counts == 20
        assert last_latency == 1019
        assert session.bytes_in > 20 * 40


def test_unplug_ends_the_session_with_a_clear_error(pty_pair) -> None:
    master, path = pty_pair
    session = DeviceSession.open(path, timeout_s=0.5, read_params=False)
    lost = threading.Event()
    session.on_disconnect = lambda reason: lost.set()
    try:
        holder = []

        def ask() -> None:
            try:
                session.echo("x", timeout_s=5.0)
            except Exception as exc:
                holder.append(exc)

        asker = threading.Thread(target=ask)
        asker.start()
        deadline, wire = time.monotonic() + 10, b""
        while b"\x06\x09" not in wire:  # the echo's SMP console frame: the request is out
            assert time.monotonic() < deadline, f"the request never went out: {wire!r}"
            if select.select([master], [], [], 0.5)[0]:
                wire += os.read(master, 4096)
        os.close(master)  # the "cable" is pulled mid-request: the pty hangs up
        asker.join(timeout=5.0)
        assert not asker.is_alive(), "a request hung after the unplug"
        assert lost.wait(3.0)
        assert holder and isinstance(holder[0], DisconnectedError), holder
        assert not session.connected
        with pytest.raises(DisconnectedError, match="lost"):
            session.stats()
    finally:
        session.close()


def test_cli_bad_port_exits_2_with_one_line_and_no_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "info", "--port", "/dev/ttyNOPE42"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "does not exist" in result.stderr


def test_text_written_by_the_host_reaches_the_device(pty_pair) -> None:
    master, path = pty_pair
    with DeviceSession.open(path, timeout_s=0.5, read_params=False) as session:
        session.write_text("led on\n")
        got = b""
        deadline = time.monotonic() + 3
        while b"\n" not in got and time.monotonic() < deadline:
            got += os.read(master, 100)
    assert got == b"led on\n"


def test_an_interrupted_call_leaves_no_pending_task(caplog: pytest.LogCaptureFixture) -> None:
    """Ctrl-C while the main thread waits on a request: closing the session ends the task
    still running on the I/O loop (no asyncio "Task was destroyed but it is pending!")."""
    import gc
    import logging
    import signal

    from device_drivers.virtual import VirtualBoard
    from device_drivers.virtual.faults import FaultConfig

    main = threading.main_thread().ident
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = threading.Event()

    def interrupt(fraction: float, message: str) -> None:  # on the I/O thread, mid-upload
        if fraction > 0 and not sent.is_set():
            sent.set()
            signal.pthread_kill(main, signal.SIGINT)

    try:
        with VirtualBoard(board="virtual", faults=FaultConfig(baud=19_200)) as vb:
            dev = DeviceSession.open(vb.port)
            try:
                with pytest.raises(KeyboardInterrupt):
                    dev.upload_file(os.urandom(30_000), "/lfs/slow.bin", progress=interrupt)
            finally:
                dev.close()
    finally:
        signal.signal(signal.SIGINT, old)
    assert sent.is_set()
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
    assert "Task was destroyed" not in caplog.text
