"""UUIDv7 (RFC 9562 §5.7): 48-bit Unix time in milliseconds, version 7, then random bits.

Layout (big-endian, 128 bits)::

    unix_ts_ms (48) | ver=0b0111 (4) | rand_a (12) | var=0b10 (2) | rand_b (62)

``rand_a`` is used as a counter within one millisecond (RFC 9562 §6.2, method 1, a fixed
12-bit counter seeded at random below 2048 each new millisecond), so ids made by one
process sort in the order they were made; on counter overflow the timestamp moves on by
one millisecond. ``rand_b`` comes from ``os.urandom``. Python 3.14's ``uuid.uuid7`` makes
the same layout; this one also runs on 3.10.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_LOCK = threading.Lock()
_last_ms = 0
_counter = 0


def uuid7(now_ms: int | None = None) -> uuid.UUID:
    """A new UUIDv7, greater than any made before by this process."""
    global _last_ms, _counter
    with _LOCK:
        ms = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_ms += 1
                _counter = 0
        ms, counter = _last_ms, _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand_b
    return uuid.UUID(int=value)


def timestamp_ms(value: uuid.UUID | str) -> int:
    """The Unix time in milliseconds stored in a UUIDv7."""
    return (uuid.UUID(str(value)).int >> 80) & ((1 << 48) - 1)
