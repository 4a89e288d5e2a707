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
