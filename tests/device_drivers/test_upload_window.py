"""A caller's ``window`` caps one upload; the session's measured plan is left as it was."""

from __future__ import annotations

import hashlib
import os

from device_drivers.link import DeviceSession
from device_drivers.link.transport import LinkOptions
from device_drivers.virtual import VirtualBoard


def test_a_callers_window_caps_one_upload_not_the_session() -> None:
    with VirtualBoard(profile="big-buffers", default_model=False) as vb, \
            DeviceSession.open(vb.port, options=LinkOptions(line_length=512)) as dev:
        plan = dev.frame_plan()
        assert plan.window == 2  # 2 KB frames in 512-byte lines, a 16-line pool: two fit
        data = os.urandom(20_000)
        frames_before = vb.counters.frames_ok
        one = dev.upload_file(data, "/lfs/one.bin", window=1)
        assert one.device_sha256 == hashlib.sha256(data).hexdigest()
        assert vb.counters.frames_ok > frames_before
        assert dev.frame_plan().window == 2
        two = dev.upload_file(data, "/lfs/two.bin")
        assert two.verified and "window 2" in two.frames


def _paced_then_unpaced(vb: VirtualBoard, data: bytes, second_baud: int) -> tuple:
    from device_drivers.virtual.faults import FaultConfig

    vb.set_faults(FaultConfig(baud=921_600))  # a UART the board keeps up with
    with DeviceSession.open(vb.port, baudrate=921_600, timeout_s=3.0) as dev:
        first = dev.frame_plan()
        assert dev.upload_file(data, "/lfs/a.bin").verified
    vb.set_faults(FaultConfig())  # unpaced: bursts arrive faster than its pool drains
    with DeviceSession.open(vb.port, baudrate=second_baud, timeout_s=3.0) as dev:
        second = dev.upload_file(data, "/lfs/b.bin")
        return first, dev.frame_plan(), second


def test_a_plan_measured_at_one_baud_rate_is_not_reused_at_another() -> None:
    # the transfer benchmark's sequence, which failed at 24281/200000 B on every run: the
    # plan measured on the paced link (4 KB frames, two in flight) was remembered for the
    # port and reused on the unpaced one, where the second frame of every burst is dropped
    data = os.urandom(60_000)
    with VirtualBoard(board="nano33ble", default_model=False) as vb:
        first, plan, upload = _paced_then_unpaced(vb, data, 115_200)
    assert first.window == 2 and upload.verified
    assert plan.source != "remembered"


def test_a_remembered_plan_too_big_for_the_link_shrinks_instead_of_failing() -> None:
    # same baud rate, so the paced link's plan is reused: the upload must adapt (bursts that
    # stall at the start of two passes in a row), not give up after its retries
    data = os.urandom(60_000)
    with VirtualBoard(board="nano33ble", default_model=False) as vb:
        _, plan, upload = _paced_then_unpaced(vb, data, 921_600)
    assert upload.device_sha256 == hashlib.sha256(data).hexdigest()
    assert plan.window == 1 and any("two passes in a row" in n for n in plan.notes), plan
