"""Virtual-board profiles: Zephyr's console receive pool, line limit, params and enumeration."""

from __future__ import annotations

import pytest
from smp import enumeration_management as em
from smp import packet as smppacket
from smpclient.requests import os_management as osreq
from test_virtual_support import Client

from device_drivers.errors import InputError
from device_drivers.virtual import profiles
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.enum_group import EnumGroup
from device_drivers.virtual.smp_server import Dispatcher
from device_drivers.virtual.uart_rx import LINE_TOO_LONG, NO_BUFFER, ConsoleRx


def lines(count: int, length: int = 40) -> list[bytes]:
    return [bytes([65 + i]) * (length - 1) + b"\n" for i in range(count)]


def test_a_burst_keeps_as_many_lines_as_the_pool_has_buffers() -> None:
    warnings: list[str] = []
    rx = ConsoleRx(128, 2, warnings.append)
    four = lines(4)
    assert rx.feed(b"".join(four)) == four[0] + four[1]
    assert warnings == [NO_BUFFER, NO_BUFFER]
    # the buffers came back after the burst was processed: the next burst gets two again
    assert rx.feed(four[2] + four[3]) == four[2] + four[3]


def test_a_line_split_over_bursts_holds_its_buffer() -> None:
    rx = ConsoleRx(128, 2)
    a, b, c = lines(3)
    assert rx.feed(a[:10]) == b""
    assert rx.feed(a[10:] + b + c) == a + b  # a's buffer was taken in the first burst
    assert rx.dropped_no_buffer == 1


def test_lines_longer_than_a_buffer_are_dropped_to_their_newline() -> None:
    warnings: list[str] = []
    rx = ConsoleRx(128, None, warnings.append)
    fits, long_line, after = lines(1, 128)[0], lines(1, 129)[0], lines(1, 50)[0]
    assert rx.feed(fits) == fits  # 128 bytes with the newline: Zephyr's limit, inclusive
    assert rx.feed(long_line[:100]) == b""
    assert rx.feed(long_line[100:] + after) == after
    assert warnings == [LINE_TOO_LONG]


def test_a_stock_frame_of_more_than_two_lines_loses_lines() -> None:
    frame = b"".join(smppacket.encode(bytes(300), line_length=128))
    assert frame.count(b"\n") > 2
    assert ConsoleRx(128, 2).feed(frame) != frame
    assert ConsoleRx(512, 16).feed(frame) == frame  # big-buffers takes it whole


def test_profiles_resolve_by_name_and_unknown_ones_say_which_exist() -> None:
    assert profiles.get_profile("zephyr-default").buf_size == 384
    assert profiles.get_profile(None).name == profiles.DEFAULT_PROFILE
    big = profiles.get_profile("big-buffers")
    assert (big.buf_size, big.line_max) == (2048, 512)
    with pytest.raises(InputError) as err:
        profiles.get_profile("huge")
    assert "zephyr-default" in str(err.value.hint)


def test_enumeration_orders_groups_like_zephyr_and_counts_handlers() -> None:
    d = Dispatcher()
    d.names.update({0: "os mgmt", 8: "fs mgmt", 64: "tinyops runtime"})
    d.add(_route(0, 0), lambda r: r)
    d.add(_route(0, 6), lambda r: r)
    d.add(_route(8, 4), lambda r: r)
    d.add(_route(64, 1), lambda r: r)
    enum = EnumGroup(d)
    enum.register(d)
    assert enum.groups() == (10, 8, 0, 64)
    details = enum.details(em.GroupDetailsRequest(groups=(0, 99)))
    assert [(g.group, g.name, g.handlers) for g in details.groups] == [(0, "os mgmt", 7)]
    assert enum.single(em.GroupIdRequest(index=3)).end is True
    assert enum.single(em.GroupIdRequest()).end is None


def _route(group: int, command: int) -> type:
    return type(f"R{group}_{command}", (em.GroupCountRequest,),
                {"_GROUP_ID": group, "_COMMAND_ID": command})


def test_strict_board_reports_its_profile_and_logs_a_dropped_burst() -> None:
    with VirtualBoard(profile="zephyr-default", default_model=False) as vb, \
            Client(vb.port) as c:
        params = c.request(osreq.MCUMgrParametersRead())
        assert (params.buf_size, params.buf_count) == (384, 4)
        assert vb.announcement()["profile"] == "zephyr-default"
        # smpclient, sized from buf_size alone, sends 380-byte messages in one burst:
        # the stock pool drops them, as on real Zephyr
        with pytest.raises(TimeoutError):
            c.request(osreq.EchoWrite(d="x" * 300), timeout_s=1.0)
        assert "<wrn> uart_mcumgr: Insufficient buffers, fragment dropped" in vb.log_text()
        assert vb.counters.lines_dropped >= 1
        assert c.request(osreq.EchoWrite(d="small")).r == "small"
