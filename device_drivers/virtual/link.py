"""The virtual board's end of the cable: a pseudo-terminal (POSIX) or a TCP socket.

Both are non-blocking and used from the board's link thread (reads) and, under the
board's write lock, from any thread (writes). ``unplug`` simulates pulling the cable:
the pty pair is closed (the host's port errors out) and a new one appears, like a
re-enumerated USB device; a TCP client is disconnected and the next one accepted.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import socket
import sys
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)

READ_SIZE = 65536


@dataclass
class LinkCounters:
    bytes_rx: int = 0
    bytes_tx: int = 0
    frames_ok: int = 0
    frames_bad: int = 0
    frames_dropped: int = 0
    lines_dropped: int = 0
    """Console lines the receive pool dropped (no buffer free, or longer than a buffer)."""
    lines_corrupted: int = 0
    text_lines_rx: int = 0
    replies_lost: int = 0
    telemetry_lines: int = 0
    telemetry_lost: int = 0
    links: int = 0
    disconnects: int = 0


class Link:
    """What the board needs from a transport."""

    port: str = ""

    def open(self) -> str:
        raise NotImplementedError

    @property
    def connected(self) -> bool:
        """Whether a host can receive what is written (always, on a pty)."""
        return True

    def poll(self, timeout: float) -> bytes | None:
        """Wait up to ``timeout`` for data: the bytes, b"" if none, None if the host left."""
        raise NotImplementedError

    def write(self, data: bytes, timeout: float) -> bool:
        """Write all of ``data`` within ``timeout``; False if it could not (host not reading)."""
        raise NotImplementedError

    def unplug(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


def _write_fd(fd: int, data: bytes, timeout: float, send=None) -> bool:
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        try:
            n = send(view) if send is not None else os.write(fd, view)
            view = view[n:]
            continue
        except (BlockingIOError, InterruptedError):
            pass
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        _, writable, _ = select.select([], [fd], [], min(remaining, 0.05))
        del writable
    return True


class PtyLink(Link):
    """A pseudo-terminal: the host opens the slave path (``/dev/pts/N``)."""

    def __init__(self) -> None:
        if sys.platform == "win32":  # pragma: no cover - POSIX only
            from device_drivers.errors import InputError

            raise InputError("pseudo-terminals need Linux or macOS",
                             "use --tcp PORT and connect to socket://127.0.0.1:PORT")
        self._master: int | None = None
        self._slave: int | None = None

    def open(self) -> str:
        import tty

        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.port = os.ttyname(slave)
        log.debug("virtual board on %s", self.port)
        return self.port

    def poll(self, timeout: float) -> bytes | None:
        if self._master is None:
            time.sleep(timeout)
            return b""
        try:
            readable, _, _ = select.select([self._master], [], [], timeout)
            if not readable:
                return b""
            return os.read(self._master, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError as exc:  # EIO: no slave open (cannot happen while we hold one)
            if exc.errno == errno.EIO:
                time.sleep(timeout)
                return b""
            raise

    def write(self, data: bytes, timeout: float) -> bool:
        fd = self._master
        if fd is None:
            return False
        try:
            return _write_fd(fd, data, timeout)
        except OSError:
            return False

    def unplug(self) -> None:
        self.close()

    def close(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None


class TcpLink(Link):
    """A TCP socket on 127.0.0.1: the host opens ``socket://127.0.0.1:PORT``.

    One host at a time: a second connection while the first is alive is closed at once
    (like a busy serial port); after a disconnect the next connection is accepted.
    """

    def __init__(self, port: int) -> None:
        self._want = port
        self._listener: socket.socket | None = None
        self._client: socket.socket | None = None

    def open(self) -> str:
        from device_drivers.errors import PortError

        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind(("127.0.0.1", self._want))
        except OSError as exc:
            listener.close()
            raise PortError(f"cannot listen on 127.0.0.1:{self._want}: {exc.strerror}",
                            "pick another --tcp port, or 0 for any free port") from None
        listener.listen(4)
        listener.setblocking(False)
        self._listener = listener
        self.port = f"socket://127.0.0.1:{listener.getsockname()[1]}"
        return self.port

    @property
    def connected(self) -> bool:
        return self._client is not None

    def _client_alive(self) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            return client.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _accept(self) -> None:
        assert self._listener is not None
        try:
            conn, addr = self._listener.accept()
        except (BlockingIOError, InterruptedError, OSError):
            return
        if self._client is not None and self._client_alive():
            log.info("refusing %s: a host is already connected", addr)
            conn.close()
            return
        self._drop_client()
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._client = conn
        log.info("host connected from %s:%s", *addr[:2])

    def poll(self, timeout: float) -> bytes | None:
        if self._listener is None:
            time.sleep(timeout)
            return b""
        watch = [self._listener] + ([self._client] if self._client is not None else [])
        try:
            readable, _, _ = select.select(watch, [], [], timeout)
        except (OSError, ValueError):
            return b""
        if self._listener in readable:
            self._accept()
            return b""
        if self._client is not None and self._client in readable:
            try:
                data = self._client.recv(READ_SIZE)
            except (BlockingIOError, InterruptedError):
                return b""
            except OSError:
                data = b""
            if not data:
                self._drop_client()
                return None
            return data
        return b""

    def write(self, data: bytes, timeout: float) -> bool:
        client = self._client
        if client is None:
            return False
        try:
            return _write_fd(client.fileno(), data, timeout, send=client.send)
        except OSError:
            return False

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def unplug(self) -> None:
        self._drop_client()

    def close(self) -> None:
        self._drop_client()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
