"""The board registry: shipped data files in ``resources/boards/`` plus the user's own.

Each ``*.json`` file holds ``{"boards": [...]}`` checked against ``schema.json`` and a few
rules the schema cannot say (a UF2 board needs a family and a model region, an ESP board a
partition, ...). Users add boards as files in ``paths.config_dir()/boards/``; a user board
with the same id as a shipped one replaces it. A broken user file is skipped with a warning
(``registry_problems()`` lists it, ``tinyops doctor`` reports it); a broken shipped file is
a bug and raises.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_drivers import paths
from device_drivers.boards.schema import validate
from device_drivers.errors import InputError

log = logging.getLogger(__name__)

BACKENDS = ("smp", "uf2", "esp", "arduino", "virtual")
SCHEMA_FILE = "schema.json"


class RegistryError(InputError):
    """A registry file does not match the schema."""


@dataclass(frozen=True)
class UsbId:
    vid: int
    pid: int
    mode: str  # "app" | "bootloader" | "any"
    source: str
    serial_port: bool = True
    bridge: bool = False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"vid": f"{self.vid:04x}", "pid": f"{self.pid:04x}",
                                "mode": self.mode, "source": self.source}
        if not self.serial_port:
            data["serial_port"] = False
        if self.bridge:
            data["bridge"] = True
        return data


@dataclass(frozen=True)
class Region:
    address: int
    size: int

    def to_dict(self) -> dict[str, Any]:
        return {"address": f"0x{self.address:x}", "size": self.size}


@dataclass(frozen=True)
class RuntimeReserve:
    """Bytes of flash and RAM the TinyOps runtime itself needs on the board (an estimate)."""

    flash: int
    ram: int
    basis: str


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    vendor: str
    mcu: str
    flash: int
    ram: int
    usb: tuple[UsbId, ...]
    backend: str
    runtime_reserve: RuntimeReserve
    kind: str = "board"
    uf2_family: int | None = None
    uf2_board_ids: tuple[str, ...] = ()
    model_region: Region | None = None
    partition: str | None = None
    fqbn: str | None = None
    match_product: tuple[str, ...] = ()
    match_manufacturer: tuple[str, ...] = ()
    external_flash: int | None = None
    psram: int | None = None
    recovery: str | None = None
    bootloader_entry: str | None = None
    notes: str | None = None
    url: str | None = None
    origin: str = field(default="", compare=False)

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"

    @property
    def is_virtual(self) -> bool:
        return self.kind == "virtual"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id, "name": self.name, "vendor": self.vendor, "mcu": self.mcu,
            "kind": self.kind, "flash": self.flash, "ram": self.ram,
            "usb": [u.to_dict() for u in self.usb], "backend": self.backend,
            "runtime_reserve": {"flash": self.runtime_reserve.flash,
                                "ram": self.runtime_reserve.ram,
                                "basis": self.runtime_reserve.basis},
        }
        optional = {
            "uf2_family": None if self.uf2_family is None else f"0x{self.uf2_family:08x}",
            "uf2_board_ids": list(self.uf2_board_ids) or None,
            "model_region": self.model_region.to_dict() if self.model_region else None,
            "partition": self.partition, "fqbn": self.fqbn,
            "external_flash": self.external_flash, "psram": self.psram,
            "recovery": self.recovery, "bootloader_entry": self.bootloader_entry,
            "notes": self.notes, "url": self.url, "origin": self.origin or None,
        }
        match = {k: list(v) for k, v in (("product", self.match_product),
                                          ("manufacturer", self.match_manufacturer)) if v}
        if match:
            optional["match"] = match
        data.update({k: v for k, v in optional.items() if v is not None})
        return data


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(
        (paths.resources_dir() / "boards" / SCHEMA_FILE).read_text("utf-8"))
    return schema


def _rules(board: dict[str, Any], where: str) -> list[str]:
    """Checks the schema cannot express."""
    problems: list[str] = []
    bid = board.get("id", "?")
    backend = board.get("backend")
    if backend == "uf2":
        for key in ("uf2_family", "model_region"):
            if key not in board:
                problems.append(f"{where} {bid}: a uf2 board needs {key!r}")
    if backend == "esp" and "partition" not in board:
        problems.append(f"{where} {bid}: an esp board needs 'partition' (the model partition)")
    if backend == "arduino" and "fqbn" not in board:
        problems.append(f"{where} {bid}: an arduino board needs 'fqbn'")
    flash, ram = board.get("flash", 0), board.get("ram", 0)
    reserve = board.get("runtime_reserve", {})
    if flash and reserve.get("flash", 0) > flash:
        problems.append(f"{where} {bid}: runtime_reserve.flash exceeds flash")
    if ram and reserve.get("ram", 0) > ram:
        problems.append(f"{where} {bid}: runtime_reserve.ram exceeds ram")
    region = board.get("model_region")
    if region and flash and region["size"] + reserve.get("flash", 0) > flash:
        problems.append(f"{where} {bid}: model_region plus runtime_reserve exceed flash")
    seen: set[tuple[str, str, str]] = set()
    for usb in board.get("usb", []):
        usb_id = (usb["vid"], usb["pid"], usb["mode"])
        if usb_id in seen:
            problems.append(f"{where} {bid}: USB id {usb['vid']}:{usb['pid']} listed twice")
        seen.add(usb_id)
        if board.get("kind") == "bridge" and not usb.get("bridge"):
            problems.append(f"{where} {bid}: a bridge entry's USB ids must say bridge: true")
    return problems


def _build(raw: dict[str, Any], origin: str) -> Board:
    match = raw.get("match", {})
    reserve = raw["runtime_reserve"]
    region = raw.get("model_region")
    return Board(
        id=raw["id"], name=raw["name"], vendor=raw["vendor"], mcu=raw["mcu"],
        flash=raw["flash"], ram=raw["ram"], backend=raw["backend"],
        kind=raw.get("kind", "board"),
        usb=tuple(UsbId(vid=int(u["vid"], 16), pid=int(u["pid"], 16), mode=u["mode"],
                        source=u["source"], serial_port=u.get("serial_port", True),
                        bridge=u.get("bridge", False)) for u in raw["usb"]),
        runtime_reserve=RuntimeReserve(reserve["flash"], reserve["ram"], reserve["basis"]),
        uf2_family=int(raw["uf2_family"], 16) if "uf2_family" in raw else None,
        uf2_board_ids=tuple(raw.get("uf2_board_ids", ())),
        model_region=Region(int(region["address"], 16), region["size"]) if region else None,
        partition=raw.get("partition"), fqbn=raw.get("fqbn"),
        match_product=tuple(match.get("product", ())),
        match_manufacturer=tuple(match.get("manufacturer", ())),
        external_flash=raw.get("external_flash"), psram=raw.get("psram"),
        recovery=raw.get("recovery"), bootloader_entry=raw.get("bootloader_entry"),
        notes=raw.get("notes"), url=raw.get("url"), origin=origin,
    )


def parse_file(path: Path, schema: dict[str, Any] | None = None) -> list[Board]:
    """Read and check one registry file; raise RegistryError listing what is wrong."""
    fix = f"fix or remove {path}"
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read board file {path}: {exc}", fix) from exc
    except json.JSONDecodeError as exc:
        raise RegistryError(f"board file {path} is not valid JSON (line {exc.lineno}: "
                            f"{exc.msg})", fix) from exc
    if isinstance(data, dict) and "boards" not in data and "id" in data:
        data = {"boards": [data]}  # a user file may hold one bare board
    problems = validate(data, schema or _schema())
    if not problems:
        for i, board in enumerate(data["boards"]):
            problems += _rules(board, f"boards[{i}]")
    if problems:
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        err = RegistryError(f"board file {path.name}: {problems[0]}{more}", fix)
        err.problems = problems  # type: ignore[attr-defined]
        raise err
    return [_build(b, str(path)) for b in data["boards"]]


def _load_dir(directory: Path, strict: bool, problems: list[str]) -> list[Board]:
    boards: list[Board] = []
    if not directory.is_dir():
        return boards
    schema = _schema()
    for path in sorted(directory.glob("*.json")):
        if path.name == SCHEMA_FILE:
            continue
        try:
            boards += parse_file(path, schema)
        except RegistryError as exc:
            if strict:
                raise
            log.warning("skipping %s", exc)
            problems.append(str(exc))
    return boards


@functools.lru_cache(maxsize=4)
def _builtin(directory: str) -> tuple[Board, ...]:
    boards = _load_dir(Path(directory), strict=True, problems=[])
    seen: set[str] = set()
    for board in boards:
        if board.id in seen:
            raise RegistryError(f"board id {board.id} is defined twice in {directory}")
        seen.add(board.id)
    return tuple(boards)


def builtin_dir() -> Path:
    return paths.resources_dir() / "boards"


def user_dir() -> Path:
    return paths.config_dir() / "boards"


def load_registry(*, strict: bool = False, include_user: bool = True) -> list[Board]:
    """Shipped boards, then user boards (same id replaces the shipped one), ordered by id."""
    by_id = {b.id: b for b in _builtin(str(builtin_dir()))}
    problems: list[str] = []
    if include_user:
        for board in _load_dir(user_dir(), strict, problems):
            by_id[board.id] = board
    return sorted(by_id.values(), key=lambda b: b.id)


def registry_problems() -> list[str]:
    """Problems in the user's board files (each such file is skipped by ``load_registry``)."""
    problems: list[str] = []
    _load_dir(user_dir(), False, problems)
    return problems


def get_board(board_id: str, registry: list[Board] | None = None) -> Board:
    """The board with ``board_id``; InputError listing close ids if there is none."""
    boards = registry if registry is not None else load_registry()
    for board in boards:
        if board.id == board_id:
            return board
    import difflib

    close = difflib.get_close_matches(board_id, [b.id for b in boards], n=3)
    hint = (f"did you mean {', '.join(close)}?" if close else
            "run `tinyops boards --registry` to list board ids")
    raise InputError(f"unknown board id {board_id!r}", hint)
