"""``VirtualBoard``: a board that speaks SMP (and the TinyOps runtime group) on a pty or
TCP socket, runs real models, streams telemetry and misbehaves on request.

Usage::

    with VirtualBoard(board="nano33ble") as vb:     # .start() returns the port
        print(vb.port)                                # /dev/pts/7
        ...                                           # talk SMP to it

Threads: ``sim-link`` reads the link, reassembles frames and answers them in order (one
request at a time, like the MCU); ``sim-telemetry`` prints one JSON line per stream
period. Writes go through one lock, whole frames or whole lines at a time.
"""

from __future__ import annotations

import atexit
import logging
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError
from device_drivers.virtual.announce import Announcer
from device_drivers.virtual.enum_group import EnumGroup
from device_drivers.virtual.faults import FaultConfig, FaultInjector, Pacer
from device_drivers.virtual.flash import FlashStore
from device_drivers.virtual.fs_group import FsGroup
from device_drivers.virtual.images import ImageGroup
from device_drivers.virtual.limits import BoardLimits, resolve_board
from device_drivers.virtual.link import Link, LinkCounters, PtyLink, TcpLink
from device_drivers.virtual.model import ModelError, ModelRunner
from device_drivers.virtual.os_group import OsGroup
from device_drivers.virtual.profiles import Profile, get_profile
from device_drivers.virtual.runtime_group import (
    DEFAULT_PATH,
    Runtime,
    default_model_files,
    model_labels,
)
from device_drivers.virtual.serve import LinkServer
from device_drivers.virtual.smp_server import Dispatcher, Fail

log = logging.getLogger(__name__)

FIRMWARE_VERSION = "1.0.0"
REPLUG_DELAY_S = 0.2


class VirtualBoard(LinkServer):
    """A virtual board; ``start()`` it (or use it as a context manager) and talk SMP to
    ``.port``. Counters of the link are in ``.counters`` (``bytes_rx``, ``frames_ok``,
    ``frames_bad``, ``frames_dropped``, ...)."""

    def __init__(self, board: str = "virtual", state_dir: str | os.PathLike[str] | None = None,
                 faults: FaultConfig | None = None, tcp_port: int | None = None,
                 model: str | os.PathLike[str] | None = None, *,
                 limits: BoardLimits | None = None, default_model: bool = True,
                 seed: int = 0, profile: str | Profile | None = None,
                 smp_transport: str = "console", serial: str | None = None) -> None:
        if smp_transport not in ("console", "raw"):
            raise InputError(f"unknown SMP transport {smp_transport!r}", "use console or raw")
        self.smp_transport = smp_transport
        """``console`` (base64 lines, text beside them) or ``raw`` (Zephyr's unencoded UART
        transport: bare SMP messages and nothing else, so no banner and no telemetry)."""
        self.profile = get_profile(profile)
        """The SMP server configuration imitated (profiles.py; None: ``DEFAULT_PROFILE``)."""
        self.limits = limits or resolve_board(board)
        self.board_id = self.limits.id
        self.faults = faults or FaultConfig()
        self._tcp_port = tcp_port
        self._model_file = Path(model) if model is not None else None
        if self._model_file is not None and not self._model_file.is_file():
            raise InputError(f"model file {self._model_file} not found",
                             "give the path of a .tflite file")
        self._default_model = default_model
        self._state_dir = state_dir
        self._seed = seed
        self._serial = serial
        self.serial: str | None = None
        """The board's identity (its USB serial number, were it hardware): ``serial=`` if
        given, else kept in the flash state (a ``--state`` board keeps it across restarts),
        else a new random one. Announced and answered in model-info's ``hw_id``."""
        self.counters = LinkCounters()
        self._injector = FaultInjector(self.faults)
        self._rx_pacer = Pacer(self.faults.baud)
        self._tx_pacer = Pacer(self.faults.baud)
        self._write_lock = threading.RLock()
        self._stop = threading.Event()
        self._rounds = threading.Condition()
        self._round = 0  # receive-loop rounds begun: set_faults' acknowledgement
        self._threads: list[threading.Thread] = []
        self._link: Link | None = None
        self._link_bytes = 0
        self._announcer = Announcer()
        self.log: deque[str] = deque(maxlen=2000)
        """The board's own log lines (``<wrn> uart_mcumgr: ...``), like a firmware's."""
        self.flash: FlashStore | None = None
        self.runner: ModelRunner | None = None
        self.runtime: Runtime | None = None
        self.port: str | None = None
        self.started_at: str | None = None
        self.telemetry_hooks: list[Callable[[bytes], None]] = []
        """Called with every telemetry line (e.g. the MQTT publisher of ``publish.py``)."""

    # ---- public API --------------------------------------------------------------------
    @property
    def bytes_rx(self) -> int:
        return self.counters.bytes_rx

    @property
    def frames_ok(self) -> int:
        return self.counters.frames_ok

    @property
    def frames_bad(self) -> int:
        return self.counters.frames_bad

    @property
    def loaded_model_sha256(self) -> str | None:
        """Hex SHA-256 of the model the runtime runs now (None without a model)."""
        m = self.runner.current if self.runner is not None else None
        return m.sha256.hex() if m is not None else None

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._stop.is_set()

    def set_faults(self, faults: FaultConfig, *, applied_within: float | None = None) -> None:
        """Change the link's faults while running (a demo's "bad cable" switch).

        The receive loop takes the switch at its next round (≤ 50 ms); with
        ``applied_within`` this waits for that round to begin — the acknowledgement that
        every byte from now on meets the new faults — and raises TimeoutError if it does
        not within that many seconds."""
        with self._write_lock:
            self.faults = faults
            self._injector = FaultInjector(faults)
            self._rx_pacer = Pacer(faults.baud)
            self._tx_pacer = Pacer(faults.baud)
            self._link_bytes = 0
        if applied_within is None or not self._threads:
            return
        with self._rounds:
            start = self._round
            if not self._rounds.wait_for(lambda: self._round > start or self._stop.is_set(),
                                         applied_within):
                raise TimeoutError(f"the board's link did not take the new faults within "
                                   f"{applied_within} s")

    def start(self) -> str:
        """Bring the board up; returns the port (a ``/dev/pts/N`` path or ``socket://`` URL)."""
        if self._threads:
            raise RuntimeError("virtual board already started")
        self.flash = FlashStore(self._state_dir, self.limits.storage_size)
        self.runner = ModelRunner()
        will_run = self._model_file is not None or bool(self.flash.state.get("model")) or (
            self._default_model and not self.flash.state.get("provisioned"))
        # interpreters import while we set up: one runs the model, one is load-model's spare
        self.runner.warm_up(count=2 if will_run else 1)
        try:
            self.runtime = Runtime(self.limits, self.flash, self.runner,
                                   smp_buffers=self.profile.buf_size * self.profile.buf_count,
                                   seed=self._seed)
            self.images = ImageGroup(self.flash, self.limits.slot_size, FIRMWARE_VERSION,
                                     self.limits.id)
            self.dispatcher = self._build_dispatcher()
            self._provision()
            self.serial = self._identity()
            self.runtime.hw_id = self.serial
            self.runner.warm_up(wait=True)  # load-model answers quickly from the start
            self._link = TcpLink(self._tcp_port) if self._tcp_port is not None else PtyLink()
            self.port = self._link.open()
        except BaseException:
            self.runner.close()
            self.flash.close()
            raise
        self.counters.links += 1
        self.started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self._stop.clear()
        self._announce()
        atexit.register(self.stop)
        self._banner()
        for name, target in (("sim-link", self._serve), ("sim-telemetry", self._telemetry)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("virtual board %s on %s", self.board_id, self.port)
        return self.port

    def stop(self) -> None:
        """Stop serving, close the link, end the interpreter, remove the announcement."""
        self._stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=10)
        self._threads.clear()
        with self._write_lock:
            if self._link is not None:
                self._link.close()
                self._link = None
        if self.runner is not None:
            self.runner.close()
        self._announcer.remove()
        if self.flash is not None:
            self.flash.close()
        atexit.unregister(self.stop)

    def __enter__(self) -> VirtualBoard:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _identity(self) -> str:
        assert self.flash is not None
        serial = self._serial or self.flash.state.get("serial")
        if not isinstance(serial, str) or not serial:
            serial = "VB" + secrets.token_hex(5).upper()
        if self.flash.state.get("serial") != serial:
            self.flash.state["serial"] = serial
            self.flash.save()
        return serial

    def announcement(self) -> dict[str, Any]:
        return {"port": self.port, "board": self.board_id, "serial": self.serial,
                "pid": os.getpid(),
                "started": self.started_at, "virtual": True, "profile": self.profile.name}

    def log_text(self) -> str:
        """The board's log so far, one line each (as ``Firmware.log_text()``)."""
        return "\n".join(self.log)

    # ---- setup -------------------------------------------------------------------------
    def _build_dispatcher(self) -> Dispatcher:
        d = Dispatcher()
        assert self.runtime is not None and self.flash is not None
        OsGroup(self.limits.id, self.limits.mcu, self.images.running_version,
                self.runtime.uptime_ms, self._reboot, self._stat_groups,
                buf_size=self.profile.buf_size, buf_count=self.profile.buf_count).register(d)
        self.images.register(d)
        FsGroup(self.flash, self.profile.buf_size, self.profile.offset_error_len).register(d)
        self.runtime.register(d)
        d.names.update({1: "img mgmt", 64: "tinyops runtime"})
        EnumGroup(d).register(d)
        return d

    def _provision(self) -> None:
        """Load the model: ``model=`` if given, else what flash holds, else the bundled one."""
        assert self.runtime is not None and self.flash is not None
        first_boot = not self.flash.state.get("provisioned")
        source = self._model_file
        if source is None and first_boot and self._default_model:
            found = default_model_files()
            source = found[0] if found else None
        if source is not None:
            labels = model_labels(source)  # the card's, as the fleet matches them
            try:
                self.runtime.install(source.read_bytes(), DEFAULT_PATH, labels)
            except Fail as exc:
                raise InputError(f"model {source} does not load on {self.board_id}: "
                                 f"{exc.reason}", "give a valid .tflite that fits the board"
                                 ) from None
        else:
            self.runtime.restore()
        self.flash.state["provisioned"] = True
        self.flash.save()

    @property
    def announce_path(self) -> Path | None:
        """The ``virtual_boards_dir()`` file that advertises this board while it runs."""
        return self._announcer.path

    def _announce(self) -> None:
        self._announcer.write(self.announcement())

    def _stat_groups(self) -> dict[str, dict[str, int]]:
        c = self.counters
        rt = self.runtime
        assert rt is not None
        return {
            "smp": {"frames_ok": c.frames_ok, "frames_bad": c.frames_bad,
                    "frames_dropped": c.frames_dropped, "bytes_rx": c.bytes_rx,
                    "bytes_tx": c.bytes_tx, "text_lines_rx": c.text_lines_rx},
            "runtime": {"inferences": rt.inferences, "loads": rt.loads,
                        "load_failures": rt.load_failures, "uptime_ms": rt.uptime_ms()},
            "link": {"links": c.links, "disconnects": c.disconnects,
                     "telemetry_lines": c.telemetry_lines, "telemetry_lost": c.telemetry_lost},
        }

    # ---- output ------------------------------------------------------------------------
    def _send(self, data: bytes, timeout: float) -> bool:
        """Write one whole frame or line (paced like the UART when ``baud`` is set)."""
        with self._write_lock:
            link = self._link
            if link is None or not link.connected:
                return False
            step = self._tx_pacer.chunk_size()
            for i in range(0, len(data), step):
                chunk = data[i: i + step]
                self._tx_pacer.wait(len(chunk), self._stop)
                if not link.write(chunk, timeout):
                    return False
                self.counters.bytes_tx += len(chunk)
            return True

    def _banner(self) -> None:
        if self.smp_transport == "raw":
            return
        text = (f"*** Booting Zephyr OS build v3.7.0 (virtual) ***\r\n"
                f"tinyops-runtime 1.0.0 on {self.board_id}: image "
                f"{self.images.running_version()}\r\n")
        self._send(text.encode(), 0.05)

    def _reboot(self) -> None:
        """OS reset: MCUboot swaps or reverts images, the runtime restarts."""
        assert self.runtime is not None
        outcome = self.images.boot()
        self.runtime.boot()
        log.info("virtual board reset (%s), running image %s", outcome,
                 self.images.running_version())
        self._banner()

    # ---- threads -----------------------------------------------------------------------
    def _unplug(self) -> None:
        """The disconnect-after fault: pull the cable, then (pty) plug a new one in."""
        self.counters.disconnects += 1
        with self._write_lock:
            link = self._link
            if link is None:
                return
            link.unplug()
            log.info("virtual board %s: link dropped after %d bytes", self.board_id,
                     self._link_bytes)
            self._link_bytes = 0
            if isinstance(link, PtyLink):
                self._stop.wait(REPLUG_DELAY_S)
                if self._stop.is_set():
                    return
                self.port = link.open()
                self.counters.links += 1
                self._announce()

    def _telemetry(self) -> None:
        assert self.runtime is not None
        next_at = time.monotonic()
        while not self._stop.is_set():
            rt = self.runtime
            period = rt.period_ms / 1000.0
            next_at = max(next_at + period, time.monotonic() - period)
            if self._stop.wait(max(0.0, next_at - time.monotonic())):
                break
            if not rt.stream_on or self.smp_transport == "raw":
                continue
            link = self._link
            online = link is not None and link.connected
            if not online and not self.telemetry_hooks:
                continue
            try:
                line = rt.telemetry_line()
                for hook in self.telemetry_hooks:
                    hook(line)
            except (ModelError, Fail, ValueError) as exc:
                log.debug("telemetry failed: %s", exc)
                continue
            except Exception:  # keep streaming whatever happens
                log.exception("telemetry line failed")
                continue
            if not online:
                continue
            if self._send(line, 0.02):
                self.counters.telemetry_lines += 1
            else:
                self.counters.telemetry_lost += 1
