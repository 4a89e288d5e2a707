"""Port problems explained: missing, forbidden, busy (with the owner), vanished, wrong mode."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import time

import pytest
import serial
from serial.tools.list_ports_common import ListPortInfo

from device_drivers import ports
from device_drivers.errors import PortError


def test_missing_port_exit_2_one_line() -> None:
    with pytest.raises(PortError) as info:
        ports.open_serial("/dev/ttyDOESNOTEXIST7")
    err = info.value
    assert err.exit_code == 2
    assert err.message == "port /dev/ttyDOESNOTEXIST7 does not exist"
    assert "\n" not in str(err) and "tinyops boards" in err.hint


def test_require_port() -> None:
    assert ports.require_port("socket://127.0.0.1:1") == "socket://127.0.0.1:1"
    with pytest.raises(PortError, match="no port given"):
        ports.require_port("  ")
    with pytest.raises(PortError, match="does not exist"):
        ports.require_port("/dev/ttyNOPE3")


def test_permission_denied_names_the_group_and_the_udev_rule(pty_path: str) -> None:
    err = ports.explain(pty_path, PermissionError(errno.EACCES, "Permission denied", pty_path))
    assert err.message == f"permission denied opening {pty_path}"
    if sys.platform.startswith("linux"):
        import grp

        group = grp.getgrgid(os.stat(pty_path).st_gid).gr_name
        assert group in err.hint
        assert "60-tinyops.rules" in err.hint or "log out" in err.hint


def test_busy_port_names_the_process_holding_it(pty_path: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys,time; f=open(sys.argv[1],'rb',buffering=0); print('ok',flush=True); "
         "time.sleep(30)", pty_path], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        owners = ports.port_owners(pty_path)
        assert holder.pid in [pid for pid, _ in owners]
        name = dict(owners)[holder.pid]
        assert name.startswith("python")
        err = ports.explain(pty_path, OSError(errno.EBUSY, "Device or resource busy"))
        assert f"pid {holder.pid}" in err.message and "busy" in err.message
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.05)
    assert holder.pid not in [pid for pid, _ in ports.port_owners(pty_path)]


def test_second_exclusive_open_is_explained_as_busy(pty_path: str) -> None:
    first = ports.open_serial(pty_path)
    try:
        with pytest.raises(PortError) as info:
            ports.open_serial(pty_path)
        assert "busy" in info.value.message
        assert "this program" in info.value.message  # we hold it ourselves
    finally:
        first.close()


def test_port_owners_on_fake_proc_root(tmp_path) -> None:
    proc = tmp_path / "proc"
    (proc / "4242" / "fd").mkdir(parents=True)
    (proc / "4242" / "comm").write_text("arduino-ide\n")
    os.symlink("/dev/ttyACM0", proc / "4242" / "fd" / "7")
    (proc / "77" / "fd").mkdir(parents=True)
    os.symlink("/dev/null", proc / "77" / "fd" / "0")
    (proc / "self").mkdir()
    assert ports.port_owners("/dev/ttyACM0", str(proc)) == [(4242, "arduino-ide")]
    assert ports.port_owners("/dev/ttyACM0", str(tmp_path / "nope")) == []


def test_vanished_port_and_refused_socket() -> None:
    err = ports.explain("/dev/ttyACM0", serial.SerialException(
        "device reports readiness to read but returned no data (device disconnected or "
        "multiple access on port?)"))
    assert "vanished" in err.message and "bootloader" in err.hint
    err = ports.explain("/dev/ttyACM0", OSError(errno.EIO, "Input/output error"))
    assert "vanished" in err.message
    with pytest.raises(PortError, match="nothing is listening"):
        ports.open_serial("socket://127.0.0.1:9")


def test_wrong_mode_hint_for_a_board_in_its_bootloader() -> None:
    info = ListPortInfo("/dev/ttyACM0", skip_link_detection=True)
    info.vid, info.pid = 0x2341, 0x005A  # Nano 33 BLE bootloader (double-tap reset)
    hint = ports.wrong_mode_hint("/dev/ttyACM0", [info])
    assert hint and "bootloader" in hint and "press reset once" in hint
    info.pid = 0x805A
    assert ports.wrong_mode_hint("/dev/ttyACM0", [info]) is None
