"""Where a verified model goes (:class:`~fleet_ops.rollout.agent.Target`): the virtual board
of ``tinyops sim --mqtt`` (:class:`SimTarget`) and a board a station flashes over SMP
(:class:`BoardTarget`, used by ``tinyops bridge``). Both keep the previous model on the device
for rollback: two model files (slots ``model-a``/``model-b`` beside the runtime's default
path, as ``tinyops flash`` does), a new model always going to the slot the running one did
not come from, loaded by the runtime's load-model (verified FlatBuffer, sha256 checked, the
old model runs until the new one is built: atomic).
"""

from __future__ import annotations

import logging
import posixpath
import threading
from collections.abc import Callable
from typing import Any

from fleet_ops.rollout.agent import UpdateRefused

log = logging.getLogger(__name__)


def other_slot(default_path: str, running_path: str | None,
               held_path: str | None = None) -> str:
    """Of the two model files beside ``default_path``, one the running model did not come
    from (never overwritten: the board falls back to it) and, when possible, not the held
    previous model's either (a refused update then keeps the rollback target too)."""
    folder = posixpath.dirname(default_path) or "/"
    slots = [posixpath.join(folder, f"model-{name}.tflite") for name in ("a", "b")]
    free = [s for s in slots if s not in (running_path, held_path)]
    if free:
        return free[0]
    return slots[1] if running_path == slots[0] else slots[0]


class SimTarget:
    """The in-process virtual board (``device_drivers.virtual.VirtualBoard``)."""

    def __init__(self, board: Any) -> None:
        self.board = board

    @property
    def _flash(self) -> Any:
        return self.board.runtime.flash

    def facts(self) -> dict[str, Any]:
        limits = self.board.limits
        prev = self._flash.state.get("previous_model") or {}
        return {"model_sha256": self.board.loaded_model_sha256,
                "previous_sha256": prev.get("sha256"), "board": self.board.board_id,
                "ops": None,  # the full TFLM interpreter: it checks the operators at load
                "arena_max": limits.arena_size, "model_max": limits.model_limit}

    def _running(self) -> tuple[str | None, str | None]:
        meta = self._flash.state.get("model") or {}
        return meta.get("path"), meta.get("sha256")

    def _load(self, path: str, sha256: str) -> None:
        from device_drivers.protocol import runtime as rt

        try:
            self.board.runtime.load_model(rt.LoadModelWriteRequest(
                path=path, sha256=bytes.fromhex(sha256)))
        except Exception as exc:  # the runtime's refusal (SMP error) names the reason
            raise UpdateRefused(f"the runtime refused the model: {exc}") from None

    def install(self, data: bytes, sha256: str, name: str) -> None:
        from device_drivers.virtual.runtime_group import DEFAULT_PATH

        path, running_sha = self._running()
        held = (self._flash.state.get("previous_model") or {}).get("path")
        dest = other_slot(DEFAULT_PATH, path, held)
        try:
            self._flash.write_file(dest, data)
        except Exception as exc:
            raise UpdateRefused(f"cannot store the model at {dest}: {exc}") from None
        self._load(dest, sha256)
        if path and running_sha:
            self._flash.state["previous_model"] = {"path": path, "sha256": running_sha}
            self._flash.save()

    def rollback(self, sha256: str) -> None:
        prev = self._flash.state.get("previous_model") or {}
        if prev.get("sha256") != sha256:
            raise UpdateRefused(f"previous model {sha256[:12]} is not held by the device")
        path, running_sha = self._running()
        self._load(prev["path"], sha256)
        self._flash.state["previous_model"] = {"path": path, "sha256": running_sha}
        self._flash.save()


class BoardTarget:
    """A board on a serial port, flashed through the station's open ``DeviceSession`` by
    ``device_drivers.flashing.flash`` (device-verified, recorded by ``recorder``)."""

    def __init__(self, session: Any, port: str, *, recorder: Any = None,
                 usb_serial: str | None = None,
                 on_load: Callable[[str], None] | None = None) -> None:
        self.session, self.port = session, port
        self.recorder, self.usb_serial = recorder, usb_serial
        self.on_load = on_load  # told the sha256 before a model is loaded on purpose
        self.previous: tuple[str, str] | None = None  # (path, sha256) held for rollback
        self._lock = threading.Lock()
        self._facts: dict[str, Any] = {}
        before = self.refresh()
        found = self._held_files(before)  # a restarted bridge: what else the board holds
        if found:
            self.previous = found[0]
            self.refresh()

    def refresh(self) -> dict[str, Any]:
        try:
            info = self.session.model_info()
        except Exception as exc:
            log.warning("%s: model-info failed (%s)", self.port, exc)
            info = None
        facts: dict[str, Any] = {"model_sha256": None, "board": None, "ops": None,
                                 "arena_max": None, "model_max": None}
        if info is not None:
            facts.update(model_sha256=bytes(info.sha256).hex() if info.loaded and info.sha256
                         else None, board=info.board, arena_max=info.arena_size,
                         ops=list(info.ops) if getattr(info, "ops", None) else None,
                         path=info.path if info.loaded else None,
                         default_path=info.default_path)
            if info.board:
                try:
                    from device_drivers.virtual.limits import resolve_board

                    facts["model_max"] = resolve_board(info.board).model_limit
                except Exception:  # a board the registry does not know: limit unknown
                    pass
        facts["previous_sha256"] = self.previous[1] if self.previous else None
        with self._lock:
            self._facts = facts
        return facts

    def facts(self) -> dict[str, Any]:
        with self._lock:
            out = dict(self._facts)
        out.pop("path", None)
        out.pop("default_path", None)
        return out

    def install(self, data: bytes, sha256: str, name: str) -> None:
        from device_drivers.errors import TinyOpsError
        from device_drivers.flashing import FlashOptions, flash
        from device_drivers.flashing.base import Artifact
        from device_drivers.flashing.smp import SmpBackend

        before = self.refresh()
        if before.get("default_path") is None:
            raise UpdateRefused(f"{self.port}: no TinyOps runtime answers model-info")
        artifact = Artifact.from_bytes(data, name or f"{sha256[:12]}.tflite", kind="model")
        dest = other_slot(before["default_path"], before.get("path"),
                          self.previous[0] if self.previous else None)
        if self.on_load is not None:
            self.on_load(sha256)
        try:
            flash(artifact, self.port, backend=SmpBackend(session=self.session),
                  options=FlashOptions(dest=dest, board=None), recorder=self.recorder,
                  usb_serial=self.usb_serial)
        except TinyOpsError as exc:
            self.refresh()
            runs = self.facts().get("model_sha256")
            raise UpdateRefused(f"flash failed: {exc.message} (the board runs "
                                f"{(runs or 'no model')[:12]})") from None
        if before.get("path") and before.get("model_sha256"):
            self.previous = (before["path"], before["model_sha256"])
        self.refresh()

    def _held_files(self, before: dict[str, Any]) -> list[tuple[str, str]]:
        """(path, sha256 by the board's own hash) of the model files the board holds besides
        the running one (the slots first): after a bridge restart nobody remembers them."""
        from device_drivers.link.files import device_sha256

        default, running = before.get("default_path"), before.get("model_sha256")
        if not default or not running:
            return []
        folder = posixpath.dirname(default) or "/"
        held = []
        for path in (*(posixpath.join(folder, f"model-{n}.tflite") for n in ("a", "b")),
                     default):
            if path == before.get("path"):
                continue
            try:
                digest = bytes(device_sha256(self.session, path)).hex()
            except Exception:  # no such file (or no hash command): nothing held there
                continue
            if digest != running:
                held.append((path, digest))
        return held

    def _find_held(self, sha256: str, before: dict[str, Any]) -> str | None:
        return next((p for p, d in self._held_files(before) if d == sha256), None)

    def rollback(self, sha256: str) -> None:
        before = self.refresh()
        path = self.previous[0] if self.previous and self.previous[1] == sha256 else \
            self._find_held(sha256, before)
        if path is None:
            raise UpdateRefused(f"previous model {sha256[:12]} is not held by the device")
        if self.on_load is not None:
            self.on_load(sha256)
        try:
            loaded = self.session.load_model(path, sha256=bytes.fromhex(sha256))
        except Exception as exc:
            raise UpdateRefused(f"load-model {path} refused: {exc}") from None
        if bytes(loaded.sha256).hex() != sha256:
            raise UpdateRefused(f"the board loaded {bytes(loaded.sha256).hex()[:12]}")
        if before.get("path") and before.get("model_sha256"):
            self.previous = (before["path"], before["model_sha256"])
        self.refresh()
