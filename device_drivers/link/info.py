"""What a board tells about itself, at the level it supports (``tinyops info``)."""

from __future__ import annotations

from typing import Any

from device_drivers.errors import DeviceError


def device_info(session: Any) -> dict[str, Any]:
    """Everything a board tells about itself, at the level it supports."""
    out: dict[str, Any] = {"port": session.port, "smp": False, "runtime": None}
    try:
        session.echo("tinyops", timeout_s=min(session.timeout_s, 1.5))
        out["smp"] = True
    except DeviceError as exc:
        if not session.connected:
            raise
        out["smp_error"] = exc.message
        return out
    out["params"] = session.params()
    out["app_info"] = session.app_info()
    info = session.model_info()
    if info is None:
        return out
    out["runtime"] = info.runtime
    out["protocol"] = info.protocol
    out["board"] = info.board
    out["default_path"] = info.default_path
    out["arena_size"] = info.arena_size
    out["model"] = None
    if info.loaded:
        out["model"] = {
            "path": info.path,
            "sha256": info.sha256.hex() if info.sha256 else None,
            "size": info.size,
            "arena_used": info.arena_used,
            "inputs": [s.model_dump() for s in info.inputs or []],
            "outputs": [s.model_dump() for s in info.outputs or []],
            "labels": info.labels,
        }
    return out
