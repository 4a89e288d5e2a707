"""Friendly names bound to USB serial numbers, kept in ``paths.config_dir()/aliases.json``.

``{"<usb serial number>": "<alias>"}``. Two identical boards differ only by their serial
number; an alias makes them tell apart at a glance ("line-3-left") and can be given
wherever a port is expected (``resolve_port``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from device_drivers import paths
from device_drivers.errors import InputError

FILE_NAME = "aliases.json"
_NAME_RE = re.compile(r"^[\w][\w .:@+-]{0,39}$")


def aliases_path() -> Path:
    return paths.config_dir() / FILE_NAME


def load_aliases() -> dict[str, str]:
    path = aliases_path()
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read aliases file {path}: {exc}",
                         f"fix the JSON in {path} or delete it") from exc
    if not isinstance(data, dict):
        raise InputError(f"aliases file {path} must hold a JSON object",
                         f"fix {path} or delete it")
    return {str(k): str(v) for k, v in data.items()}


def _save(aliases: dict[str, str]) -> None:
    path = aliases_path()
    fd, tmp = tempfile.mkstemp(prefix=".aliases-", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(dict(sorted(aliases.items())), fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def set_alias(serial_number: str, name: str) -> dict[str, str]:
    """Bind ``name`` to ``serial_number`` (replacing an earlier alias of either)."""
    serial_number, name = serial_number.strip(), name.strip()
    if not serial_number:
        raise InputError("the USB serial number is empty",
                         "copy it from the SERIAL column of `tinyops boards`")
    if not _NAME_RE.match(name):
        raise InputError(f"invalid alias {name!r}",
                         "use 1-40 letters, digits, spaces or . : @ + - _")
    aliases = load_aliases()
    for other, existing in list(aliases.items()):
        if existing.lower() == name.lower() and other != serial_number:
            raise InputError(f"alias {name!r} is already used by serial {other}",
                             f"pick another name or remove it: tinyops boards alias {other} "
                             "--remove")
    aliases[serial_number] = name
    _save(aliases)
    return aliases


def remove_alias(serial_number: str) -> bool:
    aliases = load_aliases()
    if aliases.pop(serial_number, None) is None:
        return False
    _save(aliases)
    return True


def serial_for_alias(name: str, aliases: dict[str, str] | None = None) -> str | None:
    aliases = load_aliases() if aliases is None else aliases
    for serial, alias in aliases.items():
        if alias.lower() == name.lower():
            return serial
    return None
