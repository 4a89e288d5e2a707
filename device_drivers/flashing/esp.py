"""The esp back end: esptool's Python API, driven block by block so every board has its own
progress, its own cancel, and a flash-MD5 verify computed by the chip.

Steps: connect with esptool's reset strategy (``default-reset``: DTR/RTS into the ROM
bootloader; ``usb-reset`` for USB-Serial/JTAG; ``no-reset``; or a 1200-baud touch first),
load the flasher stub, read the partition table from the device (0x8000), pick the target
(the ``model`` data partition for a model, the factory/OTA app slot for a firmware image,
or ``--dest LABEL|0xOFFSET``), check the size fits, write compressed blocks with esptool's
per-block timeouts, then ask the chip for the MD5 of the written range: it must equal the
local MD5. Finally reset the chip into its application.

esptool's own ``write_flash`` is not used because it reports progress on one global
console bar and cannot be cancelled; its loader primitives (``flash_defl_begin/block/
finish``, ``flash_md5sum``, ``read_flash``) are what it uses itself. esptool's global log
is routed to Python logging with the port of the calling thread in each message.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from device_drivers.errors import DeviceError, DisconnectedError, InputError, TinyOpsError
from device_drivers.flashing import probe
from device_drivers.flashing.base import (
    Artifact,
    BackendClass,
    CancelToken,
    FlashOptions,
    FlashResult,
    Progress,
    Recogniser,
    Stopwatch,
    board_of,
    check_cancel,
)
from device_drivers.flashing.esp_partitions import (
    TABLE_MAX_LEN,
    TABLE_OFFSET,
    TYPE_DATA,
    Partition,
    app_partition,
    find_partition,
    parse_partition_table,
)
from device_drivers.flashing.registry import register

log = logging.getLogger(__name__)

ERASE_WRITE_S_PER_MB = 40.0
"""esptool's ERASE_WRITE_TIMEOUT_PER_MB: the chip's slowest erase+write rate."""
RESET_MODES = ("default-reset", "usb-reset", "no-reset", "1200bps")

Connect = Callable[[str, FlashOptions], Any]

if TYPE_CHECKING:
    from device_drivers.boards.registry import Board


def esptool_connect(port: str, options: FlashOptions) -> Any:
    """Connect like esptool's CLI: reset into the ROM loader, detect the chip, run the stub."""
    from esptool.cmds import detect_chip
    from esptool.util import FatalError

    _route_esptool_log()
    mode = options.reset if options.reset in RESET_MODES else "default-reset"
    if mode == "1200bps":
        probe.touch_1200bps(port, settle_s=1.5)
        mode = "no-reset"
    try:
        esp = detect_chip(port, 115200, mode, connect_attempts=int(
            options.extra.get("connect_attempts", 7)))
        esp = esp.run_stub()
        baud = int(options.extra.get("esp_baud", 460800))
        if baud > 115200:
            esp.change_baud(baud)
    except FatalError as exc:
        cause = _os_cause(exc)
        if cause is not None:
            from device_drivers.ports import explain

            raise explain(port, cause) from exc
        raise DeviceError(f"{port}: cannot talk to the ESP ROM bootloader: {exc}",
                          "hold BOOT while pressing RESET, or try --reset usb-reset / "
                          "--reset no-reset; close any serial monitor on the port") from exc
    except OSError as exc:
        from device_drivers.ports import explain

        raise explain(port, exc) from exc
    return esp


def _os_cause(exc: BaseException) -> OSError | None:
    """The OSError (port missing, busy, forbidden) behind one of esptool's FatalErrors."""
    seen = exc.__cause__ or exc.__context__
    while seen is not None:
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _block_timeout(uncompressed: int) -> float:
    """esptool's compressed-block timeout: erases of the stub's 32 KiB deflate buffer cycles
    (64 KiB blocks) plus the block itself, at the slowest erase+write rate (min 3 s)."""
    erases = uncompressed // (32 * 1024) + 2
    size = uncompressed + erases * 64 * 1024
    return max(3.0, ERASE_WRITE_S_PER_MB * size / 1e6)


ESP_IMAGE_MAGIC = 0xE9


def is_esp_image(data: bytes, name: str = "") -> bool:
    """An ESP firmware image: magic byte 0xE9 first, in a ``.bin`` file."""
    return len(data) >= 24 and data[0] == ESP_IMAGE_MAGIC and name.lower().endswith(".bin")


@register
class EspBackend(BackendClass):
    """esptool: a model into the ``model`` data partition, or a firmware image."""

    name: ClassVar[str] = "esp"
    kinds: ClassVar[Mapping[str, Recogniser | None]] = {
        "esp-image": is_esp_image, "model": None, "binary": None}
    claims: ClassVar[tuple[str, ...]] = ("esp-image",)

    def __init__(self, connect: Connect | None = None) -> None:
        self._connect = connect or esptool_connect

    def flash(self, artifact: Artifact, port: str | None, options: FlashOptions,
              progress: Progress, cancel: CancelToken | None) -> FlashResult:
        clock = Stopwatch()
        if not port:
            raise InputError("the esp back end needs --port", "pass the board's serial port")
        if artifact.kind not in self.kinds:
            raise InputError(f"{artifact.name} ({artifact.kind}) cannot be written by esptool",
                             "flash a .tflite model or an ESP firmware .bin")
        board = board_of(options)
        _PORT.name = port
        progress(0.01, "connecting to the ESP ROM bootloader")
        esp = self._connect(port, options)
        try:
            check_cancel(cancel, "esp flash")
            progress(0.05, "reading the partition table")
            table = parse_partition_table(esp.read_flash(TABLE_OFFSET, TABLE_MAX_LEN))
            offset, where = self._target(artifact, table, options, board)
            data = artifact.data + b"\xff" * (-len(artifact.data) % 4)
            self._write(esp, offset, data, progress, cancel)
            progress(0.92, "verifying: flash MD5 computed by the chip")
            device_md5 = str(esp.flash_md5sum(offset, len(data))).lower()
            local_md5 = _md5(data)
            if device_md5 != local_md5:
                raise _verify_error(port, where, local_md5, device_md5, len(data))
            progress(0.97, "resetting into the application")
            self._reset(esp, options)
        except TinyOpsError:
            raise
        except Exception as exc:  # esptool's FatalError/serial errors, with the port named
            raise _translate(port, exc) from exc
        finally:
            _close(esp)
        progress(1.0, f"verified: flash MD5 {device_md5[:12]}… matches")
        return FlashResult(
            ok=True, backend=self.name, port=port, artifact=artifact.name,
            artifact_sha256=artifact.sha256, bytes=artifact.size, duration_s=clock.elapsed,
            digest_algo="md5", local_digest=local_md5, device_digest=device_md5,
            verified=True, dest=f"{where}@{offset:#x}", board=board.id if board else None,
            notes=[f"chip {getattr(esp, 'CHIP_NAME', '?')}"])

    # ------------------------------------------------------------ steps
    def _target(self, artifact: Artifact, table: list[Partition], options: FlashOptions,
                board: Board | None) -> tuple[int, str]:
        dest = options.dest
        if dest and dest.lower().startswith("0x"):
            return int(dest, 16), dest
        if artifact.kind == "esp-image" and not dest:
            part = app_partition(table)
        else:
            label = dest or (board.partition if board else None) or "model"
            part = find_partition(table, label)
            if artifact.kind == "model" and part.type != TYPE_DATA:
                raise InputError(f"partition {label!r} is an app partition, not data",
                                 "models go into a data partition (label 'model')")
        if part.encrypted:
            raise InputError(f"partition {part.label!r} is encrypted",
                             "TinyOps writes plaintext; use a non-encrypted model partition")
        if artifact.size > part.size:
            raise InputError(f"{artifact.name} ({artifact.size} B) does not fit partition "
                             f"{part.label!r} ({part.size} B)",
                             "shrink the model (int8 quantization) or enlarge the partition")
        return part.offset, part.label

    def _write(self, esp: Any, offset: int, data: bytes, progress: Progress,
               cancel: CancelToken | None) -> None:
        compressed = zlib.compress(data, 9)
        block_size = int(esp.FLASH_WRITE_SIZE)
        blocks = [compressed[i:i + block_size] for i in range(0, len(compressed), block_size)]
        esp.flash_defl_begin(len(data), len(compressed), offset)
        inflate = zlib.decompressobj()
        written = 0
        timeout = 3.0
        for seq, block in enumerate(blocks):
            check_cancel(cancel, f"esp flash at {offset + written:#x}")
            size = len(inflate.decompress(block))
            if not getattr(esp, "IS_STUB", True):
                timeout = _block_timeout(size)
            esp.flash_defl_block(block, seq, timeout=timeout)
            if getattr(esp, "IS_STUB", True):
                timeout = _block_timeout(size)  # the stub writes while the next block arrives
            written += size
            progress(0.08 + 0.84 * written / len(data),
                     f"writing at {offset + written:#010x} ({written}/{len(data)} B)")
        if getattr(esp, "IS_STUB", True):
            esp.flash_defl_finish(reboot=False, timeout=timeout)

    def _reset(self, esp: Any, options: FlashOptions) -> None:
        after = options.extra.get("esp_after", "hard-reset")
        if after == "no-reset":
            return
        uses_usb = bool(getattr(esp, "uses_usb_jtag_serial", lambda: False)())
        esp.hard_reset(uses_usb)


def _verify_error(port: str, where: str, local: str, device: str, size: int) -> DeviceError:
    from device_drivers.errors import VerifyError

    if device == _md5(b"\xff" * size):
        return VerifyError(f"{port}: the {where} region is empty after the write",
                           "the flash did not take the data; check power and flash again")
    return VerifyError(f"{port}: flash MD5 {device[:12]}… does not match {local[:12]}… "
                       f"in {where}", "flash again; if it persists the flash chip may be worn")


def _translate(port: str, exc: Exception) -> TinyOpsError:
    import serial

    if isinstance(exc, (serial.SerialException, OSError)):
        return DisconnectedError(f"lost {port} while flashing: {exc}",
                                 "check the cable and flash again")
    return DeviceError(f"{port}: esptool failed: {exc}",
                       "flash again; if it repeats, lower the speed (--baud) or reset the board")


def _close(esp: Any) -> None:
    port = getattr(esp, "_port", None)
    try:
        if port is not None:
            port.close()
    except Exception:  # closing must not hide the result
        log.debug("closing the esp port failed", exc_info=True)


# ---------------------------------------------------------------- esptool's log, per port
_PORT = threading.local()
_routed = False


def _route_esptool_log() -> None:
    """Send esptool's console output to Python logging, tagged with the calling thread's port
    (esptool has one global logger; several boards flash from several threads)."""
    global _routed
    if _routed:
        return
    from esptool.logger import TemplateLogger
    from esptool.logger import log as esplog

    esp_log = logging.getLogger("esptool")

    # esptool ships no type information, so its base class is Any to mypy
    class _Routed(TemplateLogger):  # type: ignore[misc]
        def _emit(self, level: int, text: str) -> None:
            text = text.strip()
            if text:
                esp_log.log(level, "[%s] %s", getattr(_PORT, "name", "?"), text)

        def print(self, *args: Any, **kwargs: Any) -> None:
            self._emit(logging.DEBUG, " ".join(str(a) for a in args))

        def note(self, message: str) -> None:
            self._emit(logging.INFO, message)

        def warning(self, message: str) -> None:
            self._emit(logging.WARNING, message)

        def error(self, message: str) -> None:
            self._emit(logging.ERROR, message)

        def stage(self, finish: bool = False) -> None:
            return None

        def progress_bar(self, cur_iter: int, total_iters: int, prefix: str = "",
                         suffix: str = "", bar_length: int = 30) -> None:
            return None

        def set_verbosity(self, verbosity: str) -> None:
            return None

    esplog.set_logger(_Routed())
    _routed = True
