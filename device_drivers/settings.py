"""Station settings shared by the app and the CLI: one small JSON file in the config dir.

``paths.config_dir()/settings.json`` (``TINYOPS_HOME`` moves it like everything else). The
GUI keeps its window layout in its own ``gui.ini``; what the core needs to know (today: the
operator name written into every provisioning record) lives here, so that the GUI, the CLI
and any other process on the station read the same value.

Writes are atomic (a temporary file renamed over the old one) and keep unknown keys; a
missing or damaged file reads as empty settings (and is logged), never as an error.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from device_drivers import paths

log = logging.getLogger(__name__)

FILE_NAME = "settings.json"
OPERATOR = "operator"
MAX_OPERATOR = 100
_LOCK = threading.Lock()


def settings_path() -> Path:
    return paths.config_dir() / FILE_NAME


def load() -> dict[str, Any]:
    """All stored settings (empty if there is no file or it cannot be read)."""
    path = settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.warning("settings file %s cannot be read (%s): using defaults", path, exc)
        return {}
    if not isinstance(data, dict):
        log.warning("settings file %s is not a JSON object: using defaults", path)
        return {}
    return data


def save(**values: Any) -> None:
    """Store ``values`` (``None`` removes a key), keeping every other setting."""
    with _LOCK:
        data = load()
        for key, value in values.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        path = settings_path()
        fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=2, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # no half-written file left behind
            raise


def stored_operator() -> str | None:
    """The operator name stored for this station, if any."""
    value = load().get(OPERATOR)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def set_operator(name: str | None) -> str | None:
    """Store the operator name (blank or None clears it); returns what was stored."""
    clean = " ".join((name or "").split())[:MAX_OPERATOR] or None
    save(**{OPERATOR: clean})
    return clean
