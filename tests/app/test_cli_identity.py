"""``monitor`` and ``bridge`` end when another board answers on their port.

A TCP relay stands in for a USB-UART bridge whose board is swapped: the host's connection
stays open while the relay moves from one virtual board to another.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from device_drivers.virtual.board import VirtualBoard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SwappableRelay:
    """Accepts one host connection and relays it to ``upstream``; :meth:`swap` moves the
    relay to another board without the host noticing (a board swapped behind a bridge)."""

    def __init__(self, upstream: int) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.upstream = socket.create_connection(("127.0.0.1", upstream))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def swap(self, upstream: int) -> None:
        new = socket.create_connection(("127.0.0.1", upstream))
        with self._lock:
            old, self.upstream = self.upstream, new
        old.close()

    def _run(self) -> None:
        host, _ = self.listener.accept()
        while not self._stop.is_set():
            with self._lock:
                up = self.upstream
            try:
                ready, _, _ = select.select([host, up], [], [], 0.05)
            except (OSError, ValueError):
                continue
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    if s is host:
                        self._stop.set()
                    continue
                with contextlib.suppress(OSError):
                    (up if s is host else host).sendall(data)
        host.close()

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        with self._lock:
            self.upstream.close()


@pytest.fixture
def two_boards(tmp_path: Path):
    a = VirtualBoard(board="nano33ble", state_dir=tmp_path / "a", tcp_port=_free_port(),
                     serial="VBFIRST1")
    b = VirtualBoard(board="nano33ble", state_dir=tmp_path / "b", tcp_port=_free_port(),
                     serial="VBSECOND")
    with a, b:
        yield a, b


def _tcp(board: VirtualBoard) -> int:
    return int(str(board.port).rsplit(":", 1)[1])


def test_monitor_ends_naming_both_boards_when_another_board_answers(
        two_boards, tmp_path: Path) -> None:
    a, b = two_boards
    relay = SwappableRelay(_tcp(a))
    csv = tmp_path / "rec.csv"
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "monitor", "--port", relay.url,
                             "--duration", "30", "--json", "--record", str(csv)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (csv.exists() and csv.stat().st_size > 200):
            time.sleep(0.2)  # the first board's samples are being recorded
        assert csv.exists() and csv.stat().st_size > 200
        relay.swap(_tcp(b))
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
        relay.close()
    assert proc.returncode == 1, (out, err)
    assert "another board answered" in err and "VBFIRST1" in err and "VBSECOND" in err
    assert "Traceback" not in err


def test_monitor_keeps_going_on_the_same_board(two_boards) -> None:
    a, _ = two_boards
    proc = subprocess.run([sys.executable, "-m", "app.cli", "monitor", "--port", a.port,
                           "--duration", "3", "--json"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["parsed"] > 0  # batches held for a check are not lost


def test_bridge_ends_when_another_board_answers(two_boards, tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fleet"))
    from fleet_servers import running_mosquitto

    a, b = two_boards
    relay = SwappableRelay(_tcp(a))
    with running_mosquitto() as broker:
        url = broker.url
        proc = subprocess.Popen([sys.executable, "-m", "app.cli", "bridge", "--port",
                                 relay.url, "--mqtt", url, "--duration", "30",
                                 "--device-id", "bench1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(3)
            relay.swap(_tcp(b))
            out, err = proc.communicate(timeout=20)
        finally:
            proc.kill()
            relay.close()
    assert proc.returncode == 1, (out, err)
    assert "VBFIRST1" in err and "VBSECOND" in err
