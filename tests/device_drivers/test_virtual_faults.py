"""Each fault switch, observed from the client side; TCP mode; the ``tinyops sim`` CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from serial import SerialException
from smpclient.requests import file_management as fsreq
from smpclient.requests import os_management as osreq
from smpclient.transport import SMPTransportDisconnected
from test_virtual_support import Client, example_model, sha, wait_for

from device_drivers import paths
from device_drivers.protocol import runtime as rt
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.faults import FaultConfig

LINK_ERRORS = (SMPTransportDisconnected, TimeoutError, SerialException, OSError)


@pytest.fixture(scope="module")
def board():
    with VirtualBoard(board="nano33ble") as vb:
        yield vb


@pytest.fixture
def client(board: VirtualBoard):
    board.set_faults(FaultConfig())
    with Client(board.port, timeout_s=2.0) as c:
        c.request(rt.Stream(on=False))  # keep the line quiet for timing
        yield c
    board.set_faults(FaultConfig())


def echo_ok(client: Client, timeout_s: float = 0.4) -> bool:
    try:
        return client.request(osreq.EchoWrite(d="ping"), timeout_s=timeout_s).r == "ping"
    except TimeoutError:
        return False


def test_corrupt_flips_bits_and_the_board_ignores_those_frames(board: VirtualBoard,
                                                               client: Client) -> None:
    bad, flipped = board.frames_bad, board.counters.lines_corrupted
    board.set_faults(FaultConfig(corrupt=1.0, seed=1))
    assert not echo_ok(client)
    assert board.frames_bad > bad and board.counters.lines_corrupted > flipped
    board.set_faults(FaultConfig(corrupt=0.5, seed=2))
    results = [echo_ok(client) for _ in range(12)]
    assert any(results) and not all(results)
    board.set_faults(FaultConfig())
    assert echo_ok(client, 2.0)


def test_drop_swallows_requests(board: VirtualBoard, client: Client) -> None:
    dropped = board.counters.frames_dropped
    board.set_faults(FaultConfig(drop=1.0))
    assert not echo_ok(client)
    assert board.counters.frames_dropped == dropped + 1
    board.set_faults(FaultConfig())
    assert echo_ok(client, 2.0)


def test_delay_holds_every_response(board: VirtualBoard, client: Client) -> None:
    board.set_faults(FaultConfig(delay_ms=300))
    start = time.monotonic()
    assert echo_ok(client, 3.0)
    assert 0.3 <= time.monotonic() - start < 2.0


def test_disconnect_cuts_an_upload_and_the_model_stays(board: VirtualBoard,
                                                       client: Client) -> None:
    before = board.loaded_model_sha256
    assert before == sha(example_model()).hex()
    old_port, disconnects = board.port, board.counters.disconnects
    board.set_faults(FaultConfig(disconnect_after=15_000))
    new_model = example_model() + bytes(30_000)  # valid, different, 41 kB
    with pytest.raises(LINK_ERRORS):
        client.upload_file(new_model, "/lfs/models/new.tflite")
        client.request(rt.LoadModel(path="/lfs/models/new.tflite"))
    assert wait_for(lambda: board.counters.disconnects == disconnects + 1)
    assert wait_for(lambda: board.port != old_port or board.counters.links > 1)
    assert board.loaded_model_sha256 == before
    board.set_faults(FaultConfig())
    with Client(board.port) as again:  # the re-plugged board
        assert again.request(rt.ModelInfo()).sha256 == bytes.fromhex(before)
        stored = again.request(fsreq.FileStatus(name="/lfs/models/new.tflite")).len
        assert 0 < stored < len(new_model)
        refused = again.request(rt.LoadModel(path="/lfs/models/new.tflite"))
        assert refused.err.rc == rt.RUNTIME_ERR.BAD_MODEL
        assert board.loaded_model_sha256 == before
    announced = json.loads(board.announce_path.read_text())  # re-announced after the replug
    assert announced["port"] == board.port and announced["pid"] == os.getpid()


def _upload_rate(board: VirtualBoard, faults: FaultConfig, size: int) -> float:
    board.set_faults(faults)
    data = os.urandom(size)
    with Client(board.port) as c:
        c.request(rt.Stream(on=False))
        start = time.monotonic()
        c.upload_file(data, "/lfs/rate.bin")
        rate = size / (time.monotonic() - start)
        digest = c.request(fsreq.FileHashChecksum(name="/lfs/rate.bin", type="sha256"))
        assert digest.output == sha(data)
    return rate


def test_baud_paces_the_link_like_a_uart(board: VirtualBoard, client: Client) -> None:
    client.close()
    unpaced = _upload_rate(board, FaultConfig(), 200_000)
    paced = _upload_rate(board, FaultConfig(baud=921_600), 60_000)
    line_rate = 921_600 / 10
    print(f"\nupload: unpaced {unpaced:,.0f} B/s; baud=921600 {paced:,.0f} B/s "
          f"= {paced / line_rate:.2f} of {line_rate:,.0f} B/s")
    assert paced <= line_rate  # never faster than the wire
    assert paced >= 0.5 * line_rate * 0.75  # base64 costs 4/3; the rest is framing and turns
    assert unpaced > 2 * paced


def test_tcp_mode_serves_one_host_at_a_time() -> None:
    with VirtualBoard(tcp_port=0, default_model=False) as vb:
        assert vb.port.startswith("socket://127.0.0.1:")
        tcp_port = int(vb.port.rsplit(":", 1)[1])
        with Client(vb.port) as first:
            assert first.request(osreq.EchoWrite(d="over tcp")).r == "over tcp"
            with socket.create_connection(("127.0.0.1", tcp_port), timeout=2) as second:
                assert second.recv(16) == b""  # refused: the port is busy
            assert first.request(rt.ModelInfo()).loaded is False
        assert wait_for(lambda: not vb._link.connected, 3)  # the host left
        with Client(vb.port) as third:  # the next host is accepted
            assert third.request(osreq.EchoWrite(d="again")).r == "again"
            assert third.telemetry(0.5)  # streaming is on by default


def test_cli_sim_json_runs_until_sigterm(tinyops_home) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sim", "--json", "--tcp", "0", "--board", "nano33ble",
         "--fault", "delay=5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "TINYOPS_HOME": str(tinyops_home)})
    try:
        first = json.loads(proc.stdout.readline())
        assert first["virtual"] is True and first["board"] == "nano33ble"
        assert first["pid"] == proc.pid and first["port"].startswith("socket://127.0.0.1:")
        announce = paths.virtual_boards_dir() / f"{proc.pid}.json"
        assert json.loads(announce.read_text())["port"] == first["port"]
        with Client(first["port"]) as c:
            assert c.request(rt.ModelInfo()).sha256 == sha(example_model())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert not announce.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_cli_sim_rejects_a_bad_fault() -> None:
    result = subprocess.run([sys.executable, "-m", "app.cli", "sim", "--fault", "melt=1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unknown fault" in result.stderr and "corrupt=RATE" in result.stderr


def test_a_fault_switch_is_acknowledged_by_the_link_thread() -> None:
    from device_drivers.errors import DeviceError
    from device_drivers.link import DeviceSession

    with VirtualBoard(board="nano33ble", default_model=False) as vb, \
            DeviceSession.open(vb.port, timeout_s=1.0) as dev:
        assert dev.echo("before") == "before"
        rounds = vb._round
        vb.set_faults(FaultConfig(disconnect_after=1), applied_within=10)
        assert vb._round > rounds  # returned only once a receive round began after it
        links = vb.counters.links
        with pytest.raises(DeviceError):  # the very next host byte pulls the cable
            dev.echo("after")
        assert wait_for(lambda: vb.counters.links > links, 10)  # re-plugged
