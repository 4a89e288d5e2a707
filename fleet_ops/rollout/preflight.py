"""Preflight: does this model belong on this device? Checked before a single byte is sent.

The model's facts come from its file (verified by ``model_tools.verify``: a file that is not a
valid TFLite flatbuffer stops the rollout before it is created) and its card (the arena
measured by tflite-micro, else ``model_tools.analyze``'s static estimate). The device's come
from its retained ``status`` (``resources/protocol/fleet_mqtt.md``): ``model_sha256``,
``previous_sha256``, ``board``, ``ops``, ``arena_max``, ``model_max``. A device fails
preflight (and is skipped, with the reasons) when the model does not fit its reported maxima
or its board entry (``device_drivers.boards``, ``model_tools.analyze.fit_verdict``), when its
runtime lacks an operator the model uses, when it reports no model to go back to, or when its
status cannot be read at all.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from device_drivers.errors import InputError

MAX_OPS = 512


@dataclass(frozen=True)
class ModelFacts:
    name: str
    sha256: str
    size: int
    ops: frozenset[str]
    arena_bytes: int
    arena_method: str                  # measured (card) | estimate
    baseline: dict[str, Any] | None = None   # the card's drift baseline
    data: bytes = field(default=b"", repr=False)


def model_facts(path: str | Path) -> ModelFacts:
    """Read and verify a ``.tflite`` file (``InputError`` if it is not one)."""
    from model_tools.analyze import static_arena_estimate
    from model_tools.card import read_card
    from model_tools.errors import ModelInputError
    from model_tools.verify import verify_tflite

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the model {path}: {exc.strerror or exc}",
                         "give the path of a .tflite file") from None
    try:
        model = verify_tflite(data)
    except (ModelInputError, ValueError) as exc:
        raise InputError(f"{path.name} is not a valid TFLite model: {exc}",
                         "roll out the .tflite written by tinyops quantize") from None
    sha = hashlib.sha256(data).hexdigest()
    ops = frozenset(op.op for sg in model.subgraphs for op in sg.operators)
    card = read_card(path) or {}
    if card.get("sha256") == sha and isinstance(card.get("arena_bytes"), int):
        arena, method = int(card["arena_bytes"]), str(card.get("arena_method") or "measured")
    else:
        arena, method = static_arena_estimate(model.main), "estimate"
    baseline = card.get("drift_baseline") if card.get("sha256") == sha else None
    return ModelFacts(path.name, sha, len(data), ops, arena, method, baseline, data)


@dataclass(frozen=True)
class DeviceFacts:
    device_id: str
    model_sha256: str | None
    previous_sha256: str | None
    board: str | None
    ops: frozenset[str] | None
    arena_max: int | None
    model_max: int | None
    update: str | None = None


class BadStatus(ValueError):
    """A device's status that cannot be used (the message is the reason)."""


def _hex(value: Any, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) != 64 or \
            any(c not in "0123456789abcdef" for c in value.lower()):
        raise BadStatus(f"its status has a bad {what}")
    return value.lower()


def _size(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or not 0 < value < 1 << 40:
        raise BadStatus(f"its status has a bad {what} ({str(value)[:20]!r})")
    return value


def device_facts(device_id: str, status: Any) -> DeviceFacts:
    """The facts in a device's status object; ``BadStatus`` when it is missing or garbage."""
    if status is None:
        raise BadStatus("no readable status (it never reported one, or it is not JSON)")
    if not isinstance(status, dict):
        raise BadStatus("its status is not a JSON object")
    ops = status.get("ops")
    if ops is not None:
        if not isinstance(ops, list) or len(ops) > MAX_OPS or \
                not all(isinstance(o, str) and 0 < len(o) <= 64 for o in ops):
            raise BadStatus("its status has a bad ops list")
        ops = frozenset(ops)
    board = status.get("board")
    if board is not None and (not isinstance(board, str) or not 0 < len(board) <= 64):
        raise BadStatus("its status has a bad board")
    update = status.get("update")
    return DeviceFacts(device_id, _hex(status.get("model_sha256"), "model_sha256"),
                       _hex(status.get("previous_sha256"), "previous_sha256"), board, ops,
                       _size(status.get("arena_max"), "arena_max"),
                       _size(status.get("model_max"), "model_max"),
                       update if isinstance(update, str) else None)


@functools.lru_cache(maxsize=1)
def _boards() -> dict[str, Any]:
    from device_drivers.boards.registry import load_registry

    return {b.id: b for b in load_registry() if b.flash > 0 and b.ram > 0}


def _board_fit(model: ModelFacts, board_id: str) -> str | None:
    """A reason from the board registry's entry, or None (fits, or the board is unknown)."""
    from model_tools.analyze import BoardLimits, fit_verdict

    board = _boards().get(board_id)
    if board is None:
        return None
    verdict = fit_verdict(model.size, model.arena_bytes, BoardLimits.from_board(board))
    if verdict["verdict"] == "does not fit":
        return f"does not fit its board {board_id}: {verdict['reason']}"
    return None


def preflight(model: ModelFacts, device: DeviceFacts) -> list[str]:
    """Why ``model`` must not go to ``device`` (empty: go). A device already running the
    model passes (the orchestrator then sends it nothing)."""
    if device.model_sha256 == model.sha256:
        return []
    reasons = []
    if device.model_max is not None and model.size > device.model_max:
        reasons.append(f"model is {model.size} B, the device takes at most "
                       f"{device.model_max} B")
    if device.arena_max is not None and model.arena_bytes > device.arena_max:
        reasons.append(f"model needs a {model.arena_bytes} B arena ({model.arena_method}), "
                       f"the device has {device.arena_max} B")
    if device.board:
        reason = _board_fit(model, device.board)
        if reason:
            reasons.append(reason)
    if device.model_max is None and device.arena_max is None and not device.board:
        reasons.append("the device reports neither its board nor its limits: cannot tell "
                       "whether the model fits")
    if device.ops is None:
        reasons.append("the device does not report its runtime's operators")
    else:
        missing = sorted(model.ops - device.ops)
        if missing:
            reasons.append(f"its runtime lacks {', '.join(missing)}")
    if device.model_sha256 is None:
        reasons.append("it reports no current model: nothing to roll back to")
    if device.update == "receiving":
        reasons.append("it is receiving another update")
    return reasons


def check_device(model: ModelFacts, device_id: str, status: Any) -> list[str]:
    """:func:`preflight` on a raw status; a garbage status is a reason, never an exception."""
    try:
        return preflight(model, device_facts(device_id, status))
    except BadStatus as exc:
        return [str(exc)]
