"""Run a firmware build on a QEMU mps2 machine, its UART0 on a TCP socket (``socket://``).

Storage is the ``state`` folder: QEMU runs there with semihosting on, so the firmware's files
(``/lfs/x`` → ``lfs_x``) survive a reset and a restart; TFLM's log (semihosting stderr) goes to
``state/qemu.log``. A reset by the firmware (SYSRESETREQ) reboots the machine inside the same
QEMU process; the TCP connection stays open.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from device_drivers.errors import InputError, TinyOpsError
from tinyops_base.process import stop_process

MACHINES = {"mps2-an385": "cortex-m3", "mps2-an386": "cortex-m4"}
QEMU_HINT = "install Debian's qemu-system-arm (apt-get install qemu-system-arm)"


def cpu_of(machine: str) -> str:
    if machine not in MACHINES:
        raise InputError(f"unknown machine {machine!r}", f"use one of {', '.join(MACHINES)}")
    return MACHINES[machine]


def _qemu() -> str:
    path = shutil.which("qemu-system-arm")
    if path is None:
        raise InputError("qemu-system-arm is not installed", QEMU_HINT)
    return path


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_argv(elf: str | Path, machine: str, serial: str) -> list[str]:
    """The QEMU command line; ``serial`` is a chardev spec such as ``socket,…`` or ``stdio``."""
    return [_qemu(), "-machine", machine, "-display", "none", "-monitor", "none",
            "-chardev", f"{serial},id=uart0", "-serial", "chardev:uart0",
            "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]


@dataclass
class RunningBoard:
    """A QEMU machine running the firmware: ``port`` is what TinyOps opens."""

    port: str
    machine: str
    elf: str
    state: Path
    proc: subprocess.Popen[bytes]

    @property
    def log(self) -> Path:
        return self.state / "qemu.log"

    def log_text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        stop_process(self.proc)

    def __enter__(self) -> RunningBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(elf: str | Path, machine: str, state: str | Path, *, tcp_port: int = 0,
          ready_timeout_s: float = 20.0) -> RunningBoard:
    """Start QEMU; return once its serial socket accepts connections."""
    cpu_of(machine)
    state_dir = Path(state)
    state_dir.mkdir(parents=True, exist_ok=True)
    for attempt in range(5):
        port = tcp_port or free_port()
        argv = qemu_argv(elf, machine,
                         f"socket,host=127.0.0.1,port={port},server=on,wait=off,nodelay=on")
        log = (state_dir / "qemu.log").open("ab")
        proc = subprocess.Popen(argv, cwd=state_dir, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        board = RunningBoard(f"socket://127.0.0.1:{port}", machine, str(elf), state_dir, proc)
        deadline = time.monotonic() + ready_timeout_s
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", port), timeout=0.5):
                return board
            time.sleep(0.05)  # polling QEMU's listen socket (nothing else to wait on)
        board.stop()
        text = board.log_text()
        if tcp_port or "Address already in use" not in text or attempt == 4:
            raise TinyOpsError(f"QEMU ({machine}) did not open its serial socket: "
                               f"{text.strip()[-500:] or 'no output'}")
    raise AssertionError("unreachable")
