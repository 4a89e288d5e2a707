"""GUI settings: declared once (name, type, default), stored in an INI file in the config dir.

``QSettings`` in INI format under :func:`device_drivers.paths.config_dir`, so ``TINYOPS_HOME``
moves (and tests isolate) them like every other piece of state. What the core and the CLI
need too (the operator name in the records) is not in ``gui.ini``: :attr:`Settings.operator`
reads and writes the station settings of :mod:`device_drivers.settings`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from device_drivers import paths
from device_drivers import settings as station

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Option:
    name: str
    type: type
    default: Any
    help: str


OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option("window/geometry", QByteArray, QByteArray(), "main window geometry"),
        Option("window/state", QByteArray, QByteArray(), "dock and toolbar layout"),
        Option("window/page", str, "live", "last page shown"),
        Option("model/last", str, "", "last model file opened on the Model page"),
        Option("device/last_port", str, "", "last port connected"),
        Option("live/window_s", float, 30.0, "rolling window of the live plots, seconds"),
        Option("live/autoscale", bool, True, "autoscale the y axes of the live plots"),
        Option("live/period_ms", int, 50, "telemetry period asked of runtime boards"),
        Option("console/timestamps", bool, True, "prefix console lines with the host time"),
    )
}


def settings_path() -> Path:
    return paths.config_dir() / "gui.ini"


class Settings:
    """Typed access to the declared options; unknown names are a programming error."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings_path()
        self._q = QSettings(str(self.path), QSettings.Format.IniFormat)
        if self._q.value("schema", 0, int) != SCHEMA_VERSION:
            self._q.setValue("schema", SCHEMA_VERSION)

    def get(self, name: str) -> Any:
        opt = OPTIONS[name]
        value = self._q.value(name, opt.default)
        if value is None:
            return opt.default
        try:
            if opt.type is bool:
                if isinstance(value, str):
                    return value.strip().lower() in ("1", "true", "yes", "on")
                return bool(value)
            if opt.type is QByteArray:
                return value if isinstance(value, QByteArray) else QByteArray(value)
            return opt.type(value)
        except (TypeError, ValueError):  # a hand-edited file: fall back, never crash
            return opt.default

    def set(self, name: str, value: Any) -> None:
        OPTIONS[name]  # KeyError for undeclared names
        self._q.setValue(name, value)

    @property
    def operator(self) -> str:
        """The operator name records get (stored for the station, shared with the CLI)."""
        from fleet_ops.records import current_operator

        return current_operator()

    @operator.setter
    def operator(self, name: str | None) -> None:
        station.set_operator(name)

    def sync(self) -> None:
        self._q.sync()
