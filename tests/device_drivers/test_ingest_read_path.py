"""The console read path while telemetry streams: every byte parsed, an unplug still reported."""

from __future__ import annotations

import os
import threading
import time
import tty

from device_drivers.link import DeviceSession


def _lines(n: int) -> bytes:
    return b"".join(f'{{"t": {i}, "latency_us": {1000 + i}}}\n'.encode() for i in range(n))


def test_a_stream_larger_than_one_tty_read_is_parsed_whole(pty_pair) -> None:
    master, path = pty_pair
    payload = b"first-line-is-skipped\n" + _lines(3000)  # ~90 KB: many reads
    with DeviceSession.open(path, timeout_s=0.5, read_params=False) as session:
        view, values = memoryview(payload), []

        def write_all() -> None:
            rest = view
            while rest:
                rest = rest[os.write(master, rest[:8192]):]

        writer = threading.Thread(target=write_all, daemon=True)
        writer.start()
        deadline = time.monotonic() + 20
        while len(values) < 3000 and time.monotonic() < deadline:
            batch = session.telemetry()
            if "latency_us" in batch.channels:
                values.extend(batch.channels["latency_us"][1])
            time.sleep(0.01)
        writer.join(timeout=5)
        assert session.bytes_in == len(payload)
        assert values == [1000 + i for i in range(3000)]


def test_an_unplug_while_only_telemetry_flows_reaches_on_disconnect() -> None:
    master, slave = os.openpty()  # not the fixture: master is closed here, exactly once
    tty.setraw(slave)
    path = os.ttyname(slave)
    session = DeviceSession.open(path, timeout_s=0.5, read_params=False)
    reasons: list[str] = []
    lost = threading.Event()

    def on_lost(reason: str) -> None:
        reasons.append(reason)
        lost.set()

    session.on_disconnect = on_lost
    try:
        payload = b"skipped\n" + _lines(200)
        os.write(master, payload)
        deadline = time.monotonic() + 10
        while session.bytes_in < len(payload):  # the pump, not a request, read it all
            assert time.monotonic() < deadline, f"read {session.bytes_in}/{len(payload)} B"
            time.sleep(0.01)
        os.close(master)  # the cable is pulled while no request is in flight
        assert lost.wait(5.0), "the streaming read path never reported the unplug"
        assert reasons and reasons[0]
        assert not session.connected
        assert len(session.telemetry().channels["latency_us"][1]) == 200
    finally:
        session.close()
        os.close(slave)
