"""Fault injection for the virtual board: a bad cable, a lossy link, a slow UART.

``--fault`` switches are parsed by :func:`parse_faults` into a :class:`FaultConfig`;
:class:`FaultInjector` applies them to the received byte stream, and :class:`Pacer`
paces bytes like a UART (10 bits per byte: start, 8 data, stop).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from device_drivers.errors import InputError

FAULT_HELP = (
    "corrupt=RATE (flip a bit in received frames/lines with probability RATE), "
    "drop=RATE (ignore received frames with probability RATE), delay=MS (delay every "
    "response), disconnect-after=BYTES (drop the link after receiving BYTES), "
    "baud=N (pace both directions like a UART at N baud)"
)


@dataclass(frozen=True)
class FaultConfig:
    """What goes wrong on the link. The defaults are a perfect link."""

    corrupt: float = 0.0
    """Probability that one received SMP line or text line gets one bit flipped."""
    drop: float = 0.0
    """Probability that a fully received SMP frame is silently ignored."""
    delay_ms: float = 0.0
    """Extra time before every SMP response is written."""
    disconnect_after: int | None = None
    """Drop the link (unplug) once this many bytes were received on it; every new link
    (the re-plugged pty, the next TCP client) gets the same budget again."""
    baud: int | None = None
    """Pace both directions like a UART at this baud rate (10 bits per byte)."""
    seed: int | None = None
    """Seed for the random faults (None: a different run every time)."""

    def __post_init__(self) -> None:
        for name in ("corrupt", "drop"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"fault {name}={value} is not a probability",
                                 "use a rate between 0 and 1, e.g. corrupt=0.05")
        if self.delay_ms < 0:
            raise InputError(f"fault delay={self.delay_ms} is negative", "use delay=MS >= 0")
        if self.disconnect_after is not None and self.disconnect_after < 1:
            raise InputError("fault disconnect-after must be at least 1 byte",
                             "use disconnect-after=BYTES, e.g. disconnect-after=20000")
        if self.baud is not None and not 50 <= self.baud <= 100_000_000:
            raise InputError(f"fault baud={self.baud} is out of range",
                             "use a UART rate such as baud=115200 or baud=921600")

    @property
    def active(self) -> list[str]:
        """The switches that are on, as ``name=value`` strings."""
        out = []
        if self.corrupt:
            out.append(f"corrupt={self.corrupt:g}")
        if self.drop:
            out.append(f"drop={self.drop:g}")
        if self.delay_ms:
            out.append(f"delay={self.delay_ms:g}")
        if self.disconnect_after is not None:
            out.append(f"disconnect-after={self.disconnect_after}")
        if self.baud is not None:
            out.append(f"baud={self.baud}")
        return out


def parse_faults(specs: Iterable[str]) -> FaultConfig:
    """``["corrupt=0.1", "baud=921600"]`` → FaultConfig; raises InputError with the fix."""
    values: dict[str, float | int] = {}
    for spec in specs:
        for item in str(spec).split(","):
            item = item.strip()
            if not item:
                continue
            name, sep, raw = item.partition("=")
            name = name.strip().lower().replace("_", "-")
            if not sep or not raw.strip():
                raise InputError(f"fault {item!r} has no value", f"use NAME=VALUE: {FAULT_HELP}")
            try:
                if name in ("corrupt", "drop", "delay"):
                    values[name] = float(raw)
                elif name in ("disconnect-after", "baud", "seed"):
                    values[name] = int(raw)
                else:
                    raise InputError(f"unknown fault {name!r}", f"known faults: {FAULT_HELP}")
            except ValueError:
                raise InputError(f"fault {item!r}: {raw!r} is not a number",
                                 f"use NAME=VALUE: {FAULT_HELP}") from None
    return FaultConfig(
        corrupt=float(values.get("corrupt", 0.0)),
        drop=float(values.get("drop", 0.0)),
        delay_ms=float(values.get("delay", 0.0)),
        disconnect_after=int(values["disconnect-after"]) if "disconnect-after" in values else None,
        baud=int(values["baud"]) if "baud" in values else None,
        seed=int(values["seed"]) if "seed" in values else None,
    )


class FaultInjector:
    """Random decisions for the corrupt and drop faults (thread-safe, seedable)."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._lock = threading.Lock()

    def corrupt_line(self, line: bytes) -> tuple[bytes, bool]:
        """Maybe flip one bit of ``line`` (its final newline is left alone)."""
        if not self.config.corrupt or len(line) < 2:
            return line, False
        with self._lock:
            if self._rng.random() >= self.config.corrupt:
                return line, False
            body_len = len(line) - 1 if line.endswith(b"\n") else len(line)
            pos = self._rng.randrange(body_len)
            bit = 1 << self._rng.randrange(8)
        flipped = bytearray(line)
        flipped[pos] ^= bit
        if flipped[pos] == 0x0A:  # a new newline would split the line: flip another bit
            flipped[pos] ^= 0x01
        return bytes(flipped), True

    def drop_frame(self) -> bool:
        if not self.config.drop:
            return False
        with self._lock:
            return self._rng.random() < self.config.drop


class Pacer:
    """Lets bytes through no faster than a UART at ``baud`` (10 bits per byte)."""

    def __init__(self, baud: int | None) -> None:
        self.baud = baud
        self._free_at = 0.0
        self._lock = threading.Lock()

    def seconds(self, nbytes: int) -> float:
        return 0.0 if not self.baud else nbytes * 10.0 / self.baud

    def wait(self, nbytes: int, cancel: threading.Event | None = None,
             since: float | None = None) -> None:
        """Block until ``nbytes`` more bytes would have crossed the line (which was busy
        with them from ``since`` on, if given: bytes that arrived while the board waited
        for the rest of a burst were already on the wire)."""
        if not self.baud or nbytes <= 0:
            return
        with self._lock:
            now = time.monotonic() if since is None else min(since, time.monotonic())
            self._free_at = max(self._free_at, now) + self.seconds(nbytes)
            until = self._free_at
        remaining = until - time.monotonic()
        if remaining > 0:
            if cancel is not None:
                cancel.wait(remaining)
            else:
                time.sleep(remaining)

    def chunk_size(self) -> int:
        """Bytes per write so the pacing stays smooth (about 5 ms of line time)."""
        if not self.baud:
            return 1 << 20
        return max(16, self.baud // 10 // 200)
