"""What the GUI learned about a board when it connected (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class LinkInfo:
    """What the GUI learned about a board when it connected."""

    port: str
    runtime: str | None = None
    board: str | None = None
    hw_id: str | None = None  # the device's own id (model-info ``hw_id``), if it reports one
    model_loaded: bool = False
    model_path: str | None = None
    model_sha256: str | None = None
    model_size: int | None = None
    arena_size: int | None = None
    arena_used: int | None = None
    labels: list[str] = field(default_factory=list)
    default_path: str | None = None
    params: dict[str, int] | None = None
    streaming: bool = False
    warning: str | None = None

    @classmethod
    def from_model_info(cls, port: str, info: Any, params: dict | None) -> LinkInfo:
        li = cls(port=port, params=params)
        if info is None:
            return li
        sha = getattr(info, "sha256", None)
        li.runtime = getattr(info, "runtime", None)
        li.board = getattr(info, "board", None)
        li.hw_id = getattr(info, "hw_id", None)
        li.model_loaded = bool(getattr(info, "loaded", False))
        li.model_path = getattr(info, "path", None)
        li.model_sha256 = sha.hex() if isinstance(sha, (bytes, bytearray)) else sha
        li.model_size = getattr(info, "size", None)
        li.arena_size = getattr(info, "arena_size", None)
        li.arena_used = getattr(info, "arena_used", None)
        li.labels = list(getattr(info, "labels", None) or [])
        li.default_path = getattr(info, "default_path", None)
        return li
