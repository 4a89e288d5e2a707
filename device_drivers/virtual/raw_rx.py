"""Zephyr 4.4's raw (unencoded) UART SMP transport, as the virtual board receives it.

``CONFIG_MCUMGR_TRANSPORT_RAW_UART``: the wire carries bare SMP messages — an 8-byte
header whose length field says how much CBOR follows — with no framing, no CRC and no
text beside them. A message longer than the SMP buffer is dropped; a partial message is
discarded once the input timeout passes since its first byte (so a host that sent console
frames to a raw board is understood again ~2 s later, as on real firmware).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from device_drivers.virtual.smp_server import RxEvent

HEADER = 8
INPUT_TIMEOUT_S = 2.0
"""CONFIG_MCUMGR_TRANSPORT_RAW_UART_INPUT_TIMEOUT_TIME_MS, as measured on native_sim."""


class RawRx:
    """Bytes → whole SMP messages (no I/O; ``clock`` injectable for tests)."""

    def __init__(self, max_frame: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_frame = max_frame
        self._clock = clock
        self._buf = bytearray()
        self._started = 0.0

    def reset(self) -> None:
        self._buf.clear()

    def feed(self, data: bytes) -> list[RxEvent]:
        now = self._clock()
        events: list[RxEvent] = []
        if self._buf and now - self._started > INPUT_TIMEOUT_S:
            # the input timeout: a stale partial (or impossible) message is dropped
            events.append(RxEvent("bad", reason=f"input timeout with {len(self._buf)} B"))
            self._buf.clear()
        if not self._buf and data:
            self._started = now
        self._buf.extend(data)
        while len(self._buf) >= HEADER:
            total = HEADER + int.from_bytes(self._buf[2:4], "big")
            if total > self.max_frame:
                del self._buf[HEADER:]  # an impossible length: hold nothing, await the timeout
                break
            if len(self._buf) < total:
                break  # wait for the rest
            events.append(RxEvent("frame", bytes(self._buf[:total])))
            del self._buf[:total]
            self._started = now
        return events
