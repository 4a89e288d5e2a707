"""Real Zephyr 4.4 / MCUboot SMP-server firmware for the tests (smpclient's sdist fixtures).

smpclient's source distribution on PyPI ships prebuilt Zephyr SMP servers under
``tests/fixtures/smp-server/`` with a ``manifest.json`` (how each one starts) and
``SHA256SUMS``. This module downloads that sdist once through a package client (the venv's
pip, else a pinned pip run by ``uv tool run``, since a ``uv run`` venv has no pip, else the
system's), checks the archive's sha256, unpacks only the fixtures into a cache outside the
repository, checks every artifact against ``SHA256SUMS`` and starts a fixture by name:

    with start("native_sim_serial_fs") as fw:
        DeviceSession.open(fw.port) ...

Names are ``<target>_<config>`` from the manifest (``native_sim_serial``,
``qemu_cortex_m0_serial``, ``mps2_an385_serial_recovery_buf1024``). native_sim
executables run directly (they need Debian's ``libc6:i386``) and print the
pseudo-terminal they opened; QEMU images get a TCP chardev reached as
``socket://127.0.0.1:PORT``; UDP servers listen on their manifest port. Nothing of the
firmware is committed to this repository.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyops_base.process import stop_process

SDIST = "smpclient-7.3.0.tar.gz"
SDIST_REQUIREMENT = "smpclient==7.3.0"
SDIST_SHA256 = "86aa4bc1c621805d97f449793a4077f049aa88a98a1e916bf59423d072bd2a3b"
_INNER = "smpclient-7.3.0/tests/fixtures/smp-server/"
PIP_REQUIREMENT = "pip==25.3"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_PTY = re.compile(r"connected to pseudotty: (\S+)")
_UDP_READY = re.compile(r"smp_udp: Started")


def cache_dir() -> Path:
    root = os.environ.get("TINYOPS_TEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tinyops-tests")
    return Path(root) / "smp-server-7.3.0"


class Unavailable(Exception):
    """The fixture cannot run on this machine (the reason says what to install)."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pip_commands() -> list[list[str]]:
    """Package clients that can run ``pip download``, best first.

    Inside ``uv run`` the interpreter is the project's venv, which has no pip; uv itself is
    there (``$UV`` names it) and runs a pinned pip from the registry with ``uv tool run``.
    """
    commands = [[sys.executable, "-m", "pip"]]
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv:
        commands.append([uv, "tool", "run", "--quiet", "--from", PIP_REQUIREMENT, "pip"])
    commands.append(["python3", "-m", "pip"])
    return commands


def _download(dest: Path) -> Path:
    archive = dest / SDIST
    if archive.is_file() and _sha256(archive) == SDIST_SHA256:
        return archive
    dest.mkdir(parents=True, exist_ok=True)
    errors = []
    for pip in _pip_commands():
        probe = subprocess.run([*pip, "--version"], capture_output=True, text=True,
                               check=False, timeout=300)
        if probe.returncode:
            errors.append(f"{shlex.join(pip)}: {(probe.stderr or probe.stdout).strip()[-200:]}")
            continue
        cmd = [*pip, "download", "--no-deps", "--no-binary", ":all:",
               "-d", str(dest), SDIST_REQUIREMENT]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        if not done.returncode and archive.is_file():
            break
        last = (done.stderr or done.stdout).strip().splitlines()
        errors.append(f"{shlex.join(pip)} download: {last[-1] if last else 'failed'}")
    else:
        raise Unavailable(
            f"could not download {SDIST_REQUIREMENT} (the Zephyr test firmware); is the "
            f"package index reachable? " + " | ".join(errors))
    got = _sha256(archive)
    if got != SDIST_SHA256:
        archive.unlink()
        raise Unavailable(f"{SDIST} has sha256 {got}, expected {SDIST_SHA256}")
    return archive


_lock = threading.Lock()


def fixtures_dir() -> Path:
    """The unpacked, hash-checked fixture directory (downloaded on first use)."""
    root = cache_dir()
    out = root / "smp-server"
    with _lock:
        if (out / ".complete").is_file():
            return out
        archive = _download(root)
        staging = Path(tempfile.mkdtemp(prefix="unpack-", dir=root))
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers()
                       if m.name.startswith(_INNER) and m.isfile()]
            for member in members:
                member.name = member.name[len(_INNER):]
                if "/" in member.name or member.name.startswith("."):
                    continue
                tar.extract(member, staging)
        sums = _read_sums(staging / "SHA256SUMS")
        # manifest.json is a local merge (see the sdist's VERSION): the archive's own
        # sha256 covers it; SHA256SUMS covers every firmware artifact.
        for name, want in sums.items():
            path = staging / name
            if name != "manifest.json" and path.is_file() and _sha256(path) != want:
                raise Unavailable(f"{name} does not match SHA256SUMS")
        (staging / ".complete").write_text("ok\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
        return out


def _read_sums(path: Path) -> dict[str, str]:
    sums = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    return sums


@dataclass(frozen=True)
class Spec:
    """One manifest entry that can run here."""

    name: str
    entry: dict[str, Any]

    @property
    def transport(self) -> str:
        return str(self.entry["transport"])

    @property
    def buf_size(self) -> int | None:
        return self.entry.get("buf_size")

    @property
    def buf_count(self) -> int | None:
        return self.entry.get("buf_count")

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(self.entry["groups"])

    @property
    def mcuboot(self) -> bool:
        return bool(self.entry["mcuboot"])

    @property
    def serial_recovery(self) -> bool:
        return bool(self.entry["serial_recovery"])

    def signed_image(self) -> Path:
        """The signed application image shipped beside a QEMU fixture."""
        base = self.entry["artifact"].rsplit(".", 2)[0]
        if base.endswith(".merged"):
            base = base[: -len(".merged")]
        return fixtures_dir() / f"{base}.signed.bin"


def manifest() -> dict[str, Spec]:
    folder = fixtures_dir()
    out = {}
    for entry in json.loads((folder / "manifest.json").read_text()):
        if entry.get("run") is None and entry.get("qemu_cmd") is None:
            continue
        if not (folder / entry["artifact"]).is_file():
            continue
        name = f"{entry['target']}_{entry['config']}"
        out[name] = Spec(name, entry)
    return out


def unavailable_reason(spec: Spec) -> str | None:
    if not sys.platform.startswith("linux"):
        return "the Zephyr fixtures run on Linux only"
    if spec.entry.get("run") and not any(
            Path(p).exists() for p in ("/lib/ld-linux.so.2", "/lib32/ld-linux.so.2")):
        return "native_sim needs the 32-bit loader: apt-get install libc6:i386"
    if spec.entry.get("qemu_cmd"):
        emulator = shlex.split(spec.entry["qemu_cmd"])[0]
        if shutil.which(emulator) is None:
            return f"{emulator} is missing: apt-get install qemu-system-arm"
    return None


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Firmware:
    """A running fixture: ``port`` is what TinyOps opens (a pty, ``socket://`` or ``udp://``)."""

    spec: Spec
    port: str
    proc: subprocess.Popen[bytes]
    workdir: Path
    output: deque[str] = field(default_factory=lambda: deque(maxlen=4000))
    _seen: threading.Condition = field(default_factory=threading.Condition)
    _pump_thread: threading.Thread | None = None

    def log_text(self) -> str:
        with self._seen:
            return "\n".join(self.output)

    def wait_for_output(self, pattern: str, timeout_s: float = 10.0) -> re.Match[str] | None:
        """The first line so far (or within ``timeout_s``) that matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        with self._seen:
            while True:
                for line in self.output:
                    if m := regex.search(line):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return None
                self._seen.wait(left)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = _ANSI.sub("", raw.decode(errors="replace")).rstrip()
            with self._seen:
                self.output.append(line)
                self._seen.notify_all()
        with self._seen:
            self._seen.notify_all()

    def stop(self) -> None:
        stop_process(self.proc)
        # The pump ends at EOF; closing stdout under a pump still reading crashes it, so
        # end the whole process group (a fixture may leave children holding the pipe) first.
        if self._pump_thread is not None:
            self._pump_thread.join(5.0)
            if self._pump_thread.is_alive():
                with contextlib.suppress(OSError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self._pump_thread.join(5.0)
        if self.proc.stdout is not None and not (
                self._pump_thread is not None and self._pump_thread.is_alive()):
            self.proc.stdout.close()


@contextlib.contextmanager
def start(name: str, ready_timeout_s: float = 30.0) -> Iterator[Firmware]:
    """Start fixture ``name``; stop it on exit. Raises Unavailable when it cannot run here."""
    specs = manifest()
    if name not in specs:
        raise KeyError(f"no fixture {name!r}; known: {', '.join(sorted(specs))}")
    spec = specs[name]
    reason = unavailable_reason(spec)
    if reason:
        raise Unavailable(reason)
    folder = fixtures_dir()
    with tempfile.TemporaryDirectory(prefix=f"fw-{name}-") as tmp:
        work = Path(tmp)
        for artifact in folder.iterdir():
            if artifact.suffix in (".exe", ".hex", ".bin", ".elf"):
                (work / artifact.name).symlink_to(artifact)
        tcp_port = None
        if spec.entry.get("run"):
            exe = folder / spec.entry["artifact"]
            exe.chmod(exe.stat().st_mode | 0o111)
            argv = shlex.split(spec.entry["run"])
        else:
            tcp_port = _free_port()
            argv = shlex.split(spec.entry["qemu_cmd"].replace("<PORT>", str(tcp_port)))
        proc = subprocess.Popen(argv, cwd=work, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        fw = Firmware(spec, "", proc, work)
        fw._pump_thread = threading.Thread(target=fw._pump, name=f"fw:{name}", daemon=True)
        fw._pump_thread.start()
        try:
            fw.port = _wait_ready(fw, tcp_port, ready_timeout_s)
            yield fw
        finally:
            fw.stop()


def _wait_ready(fw: Firmware, tcp_port: int | None, timeout_s: float) -> str:
    spec = fw.spec
    if tcp_port is not None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if fw.proc.poll() is not None:
                break
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", tcp_port), timeout=0.5):
                return f"socket://127.0.0.1:{tcp_port}"
            fw.wait_for_output(r"(?!x)x", 0.1)  # wait a little, woken by output
        raise RuntimeError(f"{spec.name}: QEMU never opened its serial socket\n"
                           f"{fw.log_text()[-2000:]}")
    if spec.transport == "udp":
        if fw.wait_for_output(_UDP_READY.pattern, timeout_s) is None:
            raise RuntimeError(f"{spec.name} never started its UDP server\n"
                               f"{fw.log_text()[-2000:]}")
        host = "[::1]" if spec.entry.get("ip_family") == "ipv6" else "127.0.0.1"
        return f"udp://{host}:{spec.entry.get('udp_port') or 1337}"
    match = fw.wait_for_output(_PTY.pattern, timeout_s)
    if match is None:
        raise RuntimeError(f"{spec.name} never opened its pseudo-terminal\n"
                           f"{fw.log_text()[-2000:]}")
    return match.group(1)
