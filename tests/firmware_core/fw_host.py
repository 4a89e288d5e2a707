"""Build and run the firmware core natively (``firmware/port/host``) for the host tests.

The binary is the real core (``firmware/core``) and host port, linked with a test double
of the TFLM glue (``model_double.c``: it checks the FlatBuffer identifier and computes a
fixed function, no TFLM). It is built with the host's gcc, ``-Wall -Wextra -Werror``, and
cached by the hash of its sources and flags.
"""

from __future__ import annotations

import hashlib
import os
import queue
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CFLAGS = ["-std=c11", "-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fsanitize=address,undefined",
          "-fno-sanitize-recover=all"]
"""Sanitizers on: a memory or UB error in the core ends the process (and fails the test)."""
PTY = re.compile(r"connected to pseudotty: (\S+)")


def sources() -> list[Path]:
    core = sorted((ROOT / "firmware" / "core").glob("*.c"))
    return [*core, ROOT / "firmware" / "port" / "host" / "port_host.c", HERE / "model_double.c"]


def _headers() -> list[Path]:
    return sorted([*(ROOT / "firmware").rglob("*.h")])


def build(cache: Path, program: str = "host") -> Path:
    """The host binary (``program="host"``) or a test tool (``"cbor_tool"``,
    ``"signal_tool"``)."""
    if shutil.which("gcc") is None:
        raise RuntimeError("gcc is not installed: apt-get install gcc")
    core = ROOT / "firmware" / "core"
    if program == "host":
        srcs, libs = sources(), ["-lm"]
    elif program == "signal_tool":
        srcs, libs = [HERE / "signal_tool.c", core / "signal.c"], ["-lm"]
    else:
        srcs, libs = [HERE / "cbor_tool.c", core / "cbor_enc.c", core / "cbor_dec.c"], []
    digest = hashlib.sha256(" ".join(CFLAGS + libs).encode())
    for path in srcs + _headers():
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    out = cache / f"{program}-{digest.hexdigest()[:16]}"
    if out.is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(f".{os.getpid()}.tmp")
    cmd = ["gcc", *CFLAGS, "-I", str(ROOT / "firmware" / "include"),
           "-I", str(ROOT / "firmware" / "core"), *map(str, srcs), "-o", str(tmp), *libs]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"building the host firmware failed:\n{done.stderr}")
    tmp.replace(out)
    return out


@dataclass
class HostBoard:
    """One running host build: ``port`` is its pty, ``state`` its storage directory."""

    proc: subprocess.Popen[str]
    port: str
    state: Path
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)

    def wait_line(self, pattern: str, timeout_s: float = 10.0) -> str:
        """The next stdout line matching ``pattern`` (e.g. the pty line after a reset)."""
        regex = re.compile(pattern)
        while True:
            line = self.lines.get(timeout=timeout_s)
            if regex.search(line):
                return line


def start(binary: Path, state: Path, *args: str, timeout_s: float = 10.0) -> HostBoard:
    state.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([str(binary), "--state", str(state), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = lines.get(timeout=timeout_s)
    except queue.Empty:
        proc.kill()
        raise RuntimeError("the host firmware did not announce its pty") from None
    found = PTY.search(first)
    if not found:
        proc.kill()
        raise RuntimeError(f"unexpected first line from the host firmware: {first!r}")
    return HostBoard(proc, found.group(1), state, lines)


class RawLink:
    """The console framing by hand (smp's own encoder/decoder), for byte-exact checks and
    for feeding the board garbage: ``send`` a packet, ``receive`` the next answer."""

    def __init__(self, port: str) -> None:
        import serial

        self.serial = serial.Serial(port, 115200, timeout=0.05)
        self.text: list[bytes] = []
        self._buf = bytearray()

    def close(self) -> None:
        self.serial.close()

    def write(self, data: bytes) -> None:
        self.serial.write(data)

    def send(self, packet: bytes, line_length: int = 127) -> None:
        from smp.packet import encode

        for line in encode(packet, line_length=line_length):
            self.serial.write(line)

    def _line(self, deadline: float) -> bytes | None:
        import time

        while b"\n" not in self._buf:
            if time.monotonic() > deadline:
                return None
            self._buf += self.serial.read(max(1, self.serial.in_waiting))
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf = bytearray(rest)
        return line + b"\n"

    def receive(self, timeout_s: float = 5.0) -> bytes | None:
        """The next SMP packet the board sends (text lines are kept in ``text``)."""
        import time

        from smp.packet import decode

        deadline = time.monotonic() + timeout_s
        while True:
            line = self._line(deadline)
            if line is None:
                return None
            if not line.startswith(b"\x06\x09"):
                self.text.append(line)
                continue
            decoder = decode()
            next(decoder)
            try:
                decoder.send(line)
                while True:
                    more = self._line(deadline)
                    if more is None:
                        return None
                    decoder.send(more)
            except StopIteration as done:
                return bytes(done.value)

    def request(self, packet: bytes, timeout_s: float = 5.0) -> bytes | None:
        self.send(packet)
        return self.receive(timeout_s)
