"""Link options: which transport, and (experts only) fixed frame sizes.

A light module (no smpclient, no numpy), so the CLI can build its parser and the GUI can
start without loading the link; ``device_drivers.link.transport`` re-exports these names.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_drivers.errors import InputError

TRANSPORTS = ("auto", "console", "raw", "udp")
DEFAULT_LINE_LENGTH = 128
"""Console line limit by convention (Zephyr's CONFIG_UART_MCUMGR_RX_BUF_SIZE default)."""


@dataclass(frozen=True)
class LinkOptions:
    """How to reach the SMP server: the transport and, for experts, fixed frame sizes.

    ``mtu`` caps the SMP message (header + CBOR) the host sends; ``window`` caps requests
    in flight; ``line_length`` is the console line limit. ``None`` means "from the device":
    MCUmgr params, then what the device is seen to take.
    """

    transport: str = "auto"
    baudrate: int = 115200
    mtu: int | None = None
    window: int | None = None
    line_length: int | None = None
    exclusive: bool = True

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS and self.transport != "shell":
            raise InputError(f"unknown transport {self.transport!r}",
                             f"use one of: {', '.join(TRANSPORTS)}")
        for name in ("mtu", "window", "line_length"):
            value = getattr(self, name)
            if value is not None and value < (8 if name == "line_length" else 1):
                raise InputError(f"--{name.replace('_', '-')} must be a positive size",
                                 "omit it to size frames from what the device reports")
        if self.mtu is not None and self.mtu < 64:
            raise InputError(f"--mtu {self.mtu} is too small for an SMP request",
                             "use at least 64 bytes, or omit it")
