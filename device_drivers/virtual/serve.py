"""The virtual board's receive side: link bytes → bursts → console lines → SMP frames →
answers, one request at a time on the ``sim-link`` thread (a mixin of ``VirtualBoard``)."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from device_drivers.virtual.faults import FaultConfig, FaultInjector, Pacer
from device_drivers.virtual.link import Link, LinkCounters
from device_drivers.virtual.profiles import Profile
from device_drivers.virtual.raw_rx import RawRx
from device_drivers.virtual.runtime_group import Runtime
from device_drivers.virtual.smp_server import Dispatcher, RxFramer, encode_frame
from device_drivers.virtual.uart_rx import ConsoleRx

log = logging.getLogger("device_drivers.virtual.board")

REPLY_TIMEOUT_S = 5.0
"""How long a reply may wait for the host to read before it is dropped."""


class LinkServer:
    """Serves the link of a ``VirtualBoard`` (which provides these attributes)."""

    board_id: str
    profile: Profile
    smp_transport: str
    faults: FaultConfig
    counters: LinkCounters
    log: deque[str]
    dispatcher: Dispatcher
    runtime: Runtime | None
    _injector: FaultInjector
    _rx_pacer: Pacer
    _stop: threading.Event
    _rounds: threading.Condition
    _round: int
    _link: Link | None
    _link_bytes: int

    def _send(self, data: bytes, timeout: float) -> bool:
        raise NotImplementedError

    def _unplug(self) -> None:
        raise NotImplementedError

    def _mutate(self, line: bytes) -> bytes:
        out, changed = self._injector.corrupt_line(line)
        if changed:
            self.counters.lines_corrupted += 1
        return out

    def _warn(self, message: str) -> None:
        """Log like Zephyr's uart_mcumgr (the same text), and count the dropped line."""
        self.counters.lines_dropped += 1
        self.log.append(f"<wrn> uart_mcumgr: {message}")
        log.warning("virtual board %s: uart_mcumgr: %s", self.board_id, message)

    def _serve(self) -> None:
        framer: Any = (RawRx(self.profile.buf_size) if self.smp_transport == "raw"
                       else RxFramer(self.profile.buf_size, self._mutate))
        console = (ConsoleRx(self.profile.line_max, self.profile.rx_pool, self._warn)
                   if self.profile.strict and self.smp_transport == "console" else None)
        while not self._stop.is_set():
            with self._rounds:
                self._round += 1
                self._rounds.notify_all()
            try:
                self._serve_once(framer, console)
            except Exception:  # never let the link thread die: log, drop the partial frame
                log.exception("virtual board: error while serving the link")
                framer.reset()
                if console is not None:
                    console.reset()
                self._stop.wait(0.05)

    def _burst(self, link: Link, data: bytes) -> bytes | None:
        """``data`` plus whatever else arrives within one UART poll period after it: what
        the board's receive interrupt hands over before its work queue runs."""
        window = self.profile.rx_poll_ms / 1000.0
        if window <= 0:
            return data
        parts = [data]
        deadline = time.monotonic() + window
        while (left := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            more = link.poll(left)
            if more is None:
                return None
            parts.append(more)
        return b"".join(parts)

    def _uart_polls(self, data: bytes) -> list[bytes]:
        """On a paced link (the ``baud`` fault) bytes trickle in: each UART poll hands over
        only what the line carried in one poll period, and the pool drains in between."""
        if not self.faults.baud or not self.profile.rx_poll_ms:
            return [data]
        per_poll = max(1, int(self.faults.baud / 10 * self.profile.rx_poll_ms / 1000))
        return [data[i:i + per_poll] for i in range(0, len(data), per_poll)]

    def _serve_once(self, framer: Any, console: ConsoleRx | None = None) -> None:
        budget = self.faults.disconnect_after
        link = self._link
        if link is None:
            self._stop.wait(0.05)
            return
        data = link.poll(0.05)
        arrived = time.monotonic()
        if data and console is not None:
            data = self._burst(link, data)
        if data is None:  # the TCP host went away
            framer.reset()
            if console is not None:
                console.reset()
            self._link_bytes = 0
            return
        if not data:
            return
        cut = budget is not None and self._link_bytes + len(data) >= budget
        if cut:
            data = data[: max(0, budget - self._link_bytes)]
        self._link_bytes += len(data)
        self.counters.bytes_rx += len(data)
        for piece in self._uart_polls(data):
            self._rx_pacer.wait(len(piece), self._stop, since=arrived)
            if console is not None:
                piece = console.feed(piece)
            for event in framer.feed(piece):
                self._on_event(event)
        if cut:  # the disconnect-after fault: the host sees an unplug
            self._unplug()
            framer.reset()
            if console is not None:
                console.reset()

    def _on_event(self, event: Any) -> None:
        if event.kind == "text":
            self.counters.text_lines_rx += 1
            return
        if event.kind == "bad":
            self.counters.frames_bad += 1
            log.debug("malformed frame: %s", event.reason)
            return
        if self._injector.drop_frame():
            self.counters.frames_dropped += 1
            return
        self.counters.frames_ok += 1
        started = time.monotonic()
        try:
            reply, after = self.dispatcher.handle(event.data)
        except Exception:  # the dispatcher already answers handler bugs; this is a backstop
            log.exception("request failed")
            return
        if self.runtime is not None:
            self.runtime.busy.add(time.monotonic() - started)
        if reply is None:
            return
        if self.faults.delay_ms:
            self._stop.wait(self.faults.delay_ms / 1000.0)
        wire = reply if self.smp_transport == "raw" else encode_frame(reply)
        if not self._send(wire, REPLY_TIMEOUT_S):
            self.counters.replies_lost += 1
        if after is not None:
            after()

