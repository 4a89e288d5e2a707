"""What a :meth:`DeviceSession.run_exclusive` job may do on the I/O loop: send requests and
wait for their answers, several in flight (the windowed upload)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession


class PipeIO:
    """``send`` puts a request on the wire; ``receive`` waits for its answer."""

    def __init__(self, session: DeviceSession) -> None:
        self._session = session

    async def send(self, request: Any) -> None:
        await self._session.transport.send(request.BYTES)

    async def receive(self, request: Any, timeout_s: float) -> Any:
        try:
            return await asyncio.wait_for(self._session.receive_for(request), timeout_s)
        except asyncio.TimeoutError:
            raise TimeoutError(f"no answer to {type(request).__name__}") from None
