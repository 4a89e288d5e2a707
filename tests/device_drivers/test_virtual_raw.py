"""The virtual board's raw (unencoded) SMP transport, modelled on Zephyr 4.4's raw UART."""

from __future__ import annotations

import os

from smpclient.requests import os_management as osreq

from device_drivers.link import DeviceSession
from device_drivers.link.transport import LinkOptions
from device_drivers.virtual import VirtualBoard
from device_drivers.virtual.raw_rx import INPUT_TIMEOUT_S, RawRx


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_messages_split_across_reads_and_joined_in_one_read() -> None:
    a, b = osreq.EchoWrite(d="one").BYTES, osreq.EchoWrite(d="two").BYTES
    rx = RawRx(384, Clock())
    assert rx.feed(a[:5]) == []
    events = rx.feed(a[5:] + b)
    assert [e.kind for e in events] == ["frame", "frame"]
    assert [e.data for e in events] == [a, b]


def test_console_bytes_block_a_raw_board_until_its_input_timeout() -> None:
    clock = Clock()
    rx = RawRx(384, clock)
    console = b"\x06\x09AAgAAAEAAAAGoA==\n"  # a console frame: its "length" is absurd
    probe = osreq.MCUMgrParametersRead().BYTES
    assert rx.feed(console) == []
    assert rx.feed(probe) == []  # swallowed, as native_sim_serial_raw does
    clock.now += INPUT_TIMEOUT_S + 0.1
    events = rx.feed(probe)
    assert [e.kind for e in events] == ["bad", "frame"] and events[1].data == probe


def test_the_link_detects_a_raw_virtual_board_like_real_firmware() -> None:
    with VirtualBoard(smp_transport="raw") as vb:
        with DeviceSession.open(vb.port) as dev:
            assert dev.transport_kind == "raw"
            assert dev.params() == {"buf_size": vb.profile.buf_size, "buf_count": 4}
            data = os.urandom(6000)
            result = dev.upload_file(data, "/lfs/raw.bin")
        assert result.verified
        assert vb.counters.telemetry_lines == 0  # nothing but SMP on a raw UART
    with VirtualBoard(smp_transport="raw") as vb, \
            DeviceSession.open(vb.port, options=LinkOptions(transport="raw")) as dev:
        assert dev.echo("raw") == "raw"
