"""Model card: a JSON sidecar written next to every quantized model, so it can be traced.

``<model>.tflite.card.json`` holds the model's sha256 and size, the source model's hash,
the mode, the calibration set's hash and size, the report figures, labels, and the input /
output quantization a device needs to feed and read the model.
"""

from __future__ import annotations

import json
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

CARD_SUFFIX = ".card.json"
CARD_VERSION = 1


def card_path(model_path: str | Path) -> Path:
    p = Path(model_path)
    return p.with_name(p.name + CARD_SUFFIX)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    try:
        from importlib.metadata import version

        for pkg in ("tinyops", "tensorflow", "tflite-micro"):
            try:
                out[pkg] = version(pkg)
            except Exception:  # a missing package is just not listed
                continue
    except ImportError:  # pragma: no cover
        pass
    return out


def write_card(model_path: str | Path, card: dict[str, Any]) -> Path:
    """Write ``card`` (plus version stamps) next to ``model_path``; returns the card's path."""
    data = {"card_version": CARD_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "tools": _versions(), **card}
    path = card_path(model_path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_card(model_path: str | Path) -> dict[str, Any] | None:
    path = card_path(model_path)
    if not path.is_file():
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None  # valid JSON but not a card
