"""What every flashing back end shares: the artifact, the options, the result, the interface.

A back end writes one artifact to one board and proves it: the device computes a digest
(sha256, or MD5 on ESP flash) of what it stored, and that digest must equal the local one.
No verification, no success. Long steps report through ``progress(fraction, message)``
and check ``cancel.is_set()`` between blocks (``tinyops_base.progress``).

A back end is one small class (:class:`BackendClass`) that declares, as class constants,
the artifact kinds it takes, how to recognise them from their bytes and which kinds only it
takes, registered with :func:`register` (in the table here, which ``sniff_kind`` reads);
:mod:`device_drivers.flashing.registry` picks one by name, by kind and by board. The
registry imports this module, never the reverse (no import circle).

The board: ``flash()`` looks the board up once and hands its registry entry to the back end
in ``FlashOptions.board_entry``; back ends read it with :func:`board_of`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from device_drivers.errors import Cancelled, InputError
from tinyops_base.progress import (
    CancelToken,
    Progress,
    check_cancel,
    null_progress,
    sub_progress,
)

if TYPE_CHECKING:  # names for types only: the registry is loaded lazily (lookup_board)
    from device_drivers.boards.registry import Board
    from device_drivers.link.options import LinkOptions

__all__ = ["KINDS", "MODULES", "Artifact", "Backend", "BackendClass", "CancelToken",
           "FlashOptions", "FlashResult", "Progress", "Recogniser", "Stopwatch", "backends",
           "board_of", "cancelled_before_load", "check_cancel", "lookup_board", "null_progress",
           "register", "scaled_timeout", "sniff_kind", "sub_progress", "wait_until"]

# ---------------------------------------------------------------- artifacts
KINDS = ("model", "mcuboot-image", "uf2", "esp-image", "arduino-sketch", "binary")
"""Every artifact kind; each back end declares which of them it takes."""

Recogniser = Callable[[bytes, str], bool]
"""``recognise(data, file_name)``: whether the bytes are an artifact of one kind."""


def sniff_kind(data: bytes, name: str = "") -> str:
    """Guess what an artifact is from its bytes (and its name): the first kind a back end
    recognises, asking them in :data:`MODULES` order; ``binary`` when none does."""
    for cls in backends():
        for kind, recognise in cls.kinds.items():
            if recognise is not None and recognise(data, name):
                return kind
    return "binary"


@dataclass(frozen=True)
class Artifact:
    """One thing to flash: its bytes, what kind it is, and the digests that prove it arrived."""

    name: str
    data: bytes
    kind: str
    path: Path | None = None
    model_sha256: str | None = None
    """sha256 of the model the runtime will report after flashing, when the artifact is not
    the bare model (a UF2, a sketch, a firmware with a model inside)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"unknown artifact kind {self.kind!r}", f"use one of {KINDS}")

    @property
    def size(self) -> int:
        return len(self.data)

    @functools.cached_property
    def sha256(self) -> str:
        """Computed once per artifact (a flash asks for it several times)."""
        return hashlib.sha256(self.data).hexdigest()

    @functools.cached_property
    def labels(self) -> list[str] | None:
        """Class names for a bare model, sent with load-model so the board reports them: from
        the model card beside the file (only if its sha256 is this model's), else from
        ``<stem>.labels.txt`` or ``labels.txt`` beside it. None when there are none. Read
        once per artifact (a station flashing many boards reads them once)."""
        if self.kind != "model" or self.path is None:
            return None
        return model_labels(self.path, self.sha256)

    @property
    def expected_model_sha256(self) -> str | None:
        if self.model_sha256:
            return self.model_sha256
        return self.sha256 if self.kind == "model" else None

    @classmethod
    def from_bytes(cls, data: bytes, name: str, kind: str | None = None,
                   model_sha256: str | None = None) -> Artifact:
        return cls(name=name, data=bytes(data), kind=kind or sniff_kind(data, name),
                   model_sha256=model_sha256)

    @classmethod
    def load(cls, path: str | Path, kind: str | None = None,
             model_sha256: str | None = None) -> Artifact:
        """Read a model, image, UF2 or sketch directory; InputError if it cannot be used."""
        path = Path(path)
        if path.is_dir():
            if not (any(path.glob("*.ino")) or (path / "library.properties").is_file()):
                raise InputError(f"{path} is neither an Arduino sketch (*.ino) nor library",
                                 "pass a model, an image, a .uf2, or an exported Arduino dir")
            return cls(name=path.name, data=_tree_bytes(path), kind=kind or "arduino-sketch",
                       path=path, model_sha256=model_sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise InputError(f"{path} does not exist", "check the file name") from None
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
        if not data:
            raise InputError(f"{path} is empty", "export or build the artifact again")
        return cls(name=path.name, data=data, kind=kind or sniff_kind(data, path.name),
                   path=path, model_sha256=model_sha256)


MAX_LABELS = 256
MAX_LABEL_CHARS = 64


def model_labels(path: Path, sha256: str) -> list[str] | None:
    """Labels for the model at ``path`` (see :attr:`Artifact.labels`)."""
    card = path.with_name(path.name + ".card.json")
    with contextlib.suppress(OSError, ValueError):
        meta = json.loads(card.read_text(encoding="utf-8"))
        if isinstance(meta, dict) and meta.get("sha256") == sha256:
            labels = _clean_labels(meta.get("labels"))
            if labels:
                return labels
    for candidate in (path.with_name(path.stem + ".labels.txt"), path.with_name("labels.txt")):
        with contextlib.suppress(OSError, UnicodeDecodeError):
            labels = _clean_labels(candidate.read_text(encoding="utf-8").splitlines())
            if labels:
                return labels
    return None


def _clean_labels(raw: Any) -> list[str] | None:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LABELS:
        return None
    labels = [str(x).strip() for x in raw if isinstance(x, str) and str(x).strip()]
    if not labels or any(len(x) > MAX_LABEL_CHARS for x in labels):
        return None
    return labels


def _tree_bytes(root: Path) -> bytes:
    """A deterministic byte string for a directory (for its digest in the records)."""
    out = bytearray()
    for item in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = item.relative_to(root).as_posix().encode()
        body = item.read_bytes()
        out += struct.pack("<I", len(rel)) + rel + struct.pack("<Q", len(body)) + body
    return bytes(out)


# ---------------------------------------------------------------- options and result
@dataclass
class FlashOptions:
    """Per-flash settings; back ends read the ones they understand."""

    dest: str | None = None
    """smp: file path on the device; uf2: mount point of the bootloader drive;
    esp: partition label (default ``model``) or ``0x...`` offset."""
    board: str | None = None
    """Registry id; picks defaults (back end, UF2 family, partition, FQBN)."""
    timeout_scale: float = 1.0
    baudrate: int = 115200
    reset: str = "default-reset"
    """esp: esptool's connect mode (``default-reset``, ``usb-reset``, ``no-reset``) or
    ``1200bps`` (touch the port at 1200 baud first, as Arduino and TinyUSB boards expect)."""
    reboot_timeout_s: float = 30.0
    """uf2/arduino/smp images: how long the board may take to come back after a reset."""
    link: LinkOptions | None = None
    """smp: ``LinkOptions`` (transport, --mtu/--window/--line-length); None: from the device."""
    extra: dict[str, Any] = field(default_factory=dict)
    board_entry: Board | None = None
    """The registry entry of ``board``, looked up once by ``flash()`` (or ``prepare``) and
    passed down; back ends read it with :func:`board_of`."""


@dataclass
class FlashResult:
    """What a flash did and how it was proven. ``ok`` only when the device verified it."""

    ok: bool
    backend: str
    port: str | None
    artifact: str
    artifact_sha256: str
    bytes: int
    duration_s: float
    digest_algo: str = "sha256"
    local_digest: str | None = None
    device_digest: str | None = None
    verified: bool = False
    dest: str | None = None
    board: str | None = None
    usb_serial: str | None = None
    previous_sha256: str | None = None
    error: str | None = None
    hint: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def throughput_bps(self) -> float:
        """Bytes per second over the whole operation (including verification)."""
        return self.bytes / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["throughput_Bps"] = round(self.throughput_bps, 1)
        out["duration_s"] = round(self.duration_s, 4)
        return out


class Backend(Protocol):
    """What ``flash()`` calls: anything with a ``name`` and this ``flash`` method."""

    name: ClassVar[str]

    def flash(self, artifact: Artifact, port: str | None, options: FlashOptions,
              progress: Progress, cancel: CancelToken | None) -> FlashResult: ...


class BackendClass:
    """Base of the registered back ends: one small class per transport, mostly constants.

    ``kinds`` maps each artifact kind the back end takes to how to recognise it from its
    bytes (None: it takes that kind but does not claim to recognise it). ``claims`` are the
    kinds only this back end takes: an artifact of such a kind goes to it whatever the board
    registry says. ``aliases`` are other names it answers to.
    """

    name: ClassVar[str]
    aliases: ClassVar[tuple[str, ...]] = ()
    kinds: ClassVar[Mapping[str, Recogniser | None]] = {}
    claims: ClassVar[tuple[str, ...]] = ()

    def flash(self, artifact: Artifact, port: str | None, options: FlashOptions,
              progress: Progress, cancel: CancelToken | None) -> FlashResult:
        raise NotImplementedError


MODULES = ("smp", "uf2", "esp", "arduino")
"""Back-end modules under ``device_drivers.flashing``, in recognition order; imported on
first use (esptool and friends stay out of the start-up)."""

_REGISTRY: dict[str, type[BackendClass]] = {}


def register(cls: type[BackendClass]) -> type[BackendClass]:
    """Class decorator: make ``cls`` a back end ``flash()`` can choose."""
    unknown = set(cls.kinds) - set(KINDS)
    if unknown or not set(cls.claims) <= set(cls.kinds):
        raise ValueError(f"back end {cls.__name__}: kinds {sorted(unknown)} are unknown, or "
                         "it claims kinds it does not take")
    _REGISTRY[cls.name] = cls
    return cls


def backends() -> list[type[BackendClass]]:
    """Every registered back end, in recognition order: :data:`MODULES` order whatever order
    they were imported in (a back end registered from elsewhere comes after them)."""
    for module in MODULES:
        importlib.import_module(f"device_drivers.flashing.{module}")

    def rank(cls: type[BackendClass]) -> int:
        module = cls.__module__.rpartition(".")[2]
        return MODULES.index(module) if module in MODULES else len(MODULES)

    return sorted(_REGISTRY.values(), key=rank)  # stable: registration order within a rank


# ---------------------------------------------------------------- helpers for back ends
def scaled_timeout(nbytes: int, bytes_per_s: float, base_s: float = 5.0,
                   scale: float = 1.0) -> float:
    """A timeout that grows with the size: base plus twice the nominal transfer time."""
    return (base_s + 2.0 * nbytes / max(bytes_per_s, 1.0)) * max(scale, 0.1)


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


def wait_until(predicate: Callable[[], Any], timeout_s: float, cancel: CancelToken | None,
               what: str, poll_s: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy; None on timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        check_cancel(cancel, what)
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(poll_s)


def lookup_board(board_id: str | None) -> Board | None:
    """The registry entry for ``board_id`` (None when not given); InputError if unknown."""
    if not board_id:
        return None
    from device_drivers import boards

    return boards.get_board(board_id)


def board_of(options: FlashOptions) -> Board | None:
    """The board's registry entry for a back end: the one ``flash()`` looked up and passed
    in ``options.board_entry``; looked up here only for a back end called on its own."""
    if options.board_entry is not None or not options.board:
        return options.board_entry
    return lookup_board(options.board)


def cancelled_before_load(exc: Cancelled, port: str, previous: str | None,
                          runtime: bool) -> Cancelled:
    """A cancel before ``load-model``: the board still runs what it ran (the load is atomic)."""
    if not runtime:
        runs = f"the file on {port} is incomplete (a stock SMP server loads nothing): flash again"
    elif previous:
        runs = f"{port} still runs the previous model (sha256 {previous[:16]}…)"
    else:
        runs = f"{port} still runs no model (none was loaded before)"
    out = Cancelled(f"{exc.message}; {runs}")
    out.board_runs = previous  # type: ignore[attr-defined]
    return out
