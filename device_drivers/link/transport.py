"""smpclient's serial transport, opened through our port layer.

``SMPSerialTransport`` opens ``pyserial.Serial(port=...)``, which cannot open pyserial URLs
(``socket://``, ``rfc2217://``, ``loop://``) and reports a missing or forbidden port only
as a connect timeout. This subclass opens the port with ``serial_for_url`` through
``device_drivers.ports`` (so every failure is a ``PortError`` with a fix) and keeps
smpclient's framing, fragmentation and SMP/serial separation as they are.
"""

from __future__ import annotations

import contextlib
import logging

from smpclient.transport.serial import SMPSerialTransport
from typing_extensions import override

from device_drivers import ports
from device_drivers.errors import InputError

log = logging.getLogger(__name__)


class UrlSerialTransport(SMPSerialTransport):
    def __init__(self, baudrate: int = 115200, exclusive: bool = True) -> None:
        try:
            super().__init__(baudrate=baudrate, timeout=0, write_timeout=5.0)
        except ValueError as exc:  # pyserial checks the settings when the object is made
            raise InputError(f"invalid serial settings: {exc}",
                             "use a positive baud rate such as 115200") from exc
        self._baudrate = baudrate
        self._exclusive = exclusive

    @override
    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        conn = ports.open_serial(address, baudrate=self._baudrate, timeout=0.0,
                                 exclusive=self._exclusive)
        # Some URL handlers and ptys refuse; nothing is lost by skipping it.
        with contextlib.suppress(OSError):
            conn.reset_input_buffer()
        self._conn = conn  # type: ignore[misc]  # smpclient marks it Final; we own the port
        log.debug("opened %s", address)

    async def _drain_tx(self) -> None:  # type: ignore[misc]  # smpclient marks it final
        # URL ports (socket://, rfc2217://) have no output queue to poll: writes are done.
        if hasattr(self._conn, "out_waiting"):
            await super()._drain_tx()

    @property
    def serial(self):  # type: ignore[no-untyped-def]
        return self._conn

    @property
    def server_buffer_size(self) -> int | None:
        return self._smp_server_transport_buffer_size
