"""Where TinyOps keeps settings, records, logs and runtime files.

Everything lives under the platformdirs user dirs of the app ``tinyops``. Setting the
environment variable ``TINYOPS_HOME`` moves all of them under one root (tests, kiosks,
portable installs).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import platformdirs

APP_NAME = "tinyops"
HOME_ENV = "TINYOPS_HOME"


def _root() -> Path | None:
    value = os.environ.get(HOME_ENV)
    return Path(value).expanduser() if value else None


def _dir(kind: str) -> Path:
    root = _root()
    if root is not None:
        path = root / kind
    else:
        getters: dict[str, Callable[..., str]] = {
            "config": platformdirs.user_config_dir,
            "data": platformdirs.user_data_dir,
            "log": platformdirs.user_log_dir,
            "cache": platformdirs.user_cache_dir,
            "runtime": platformdirs.user_runtime_dir,
        }
        getter = getters[kind]
        with warnings.catch_warnings():  # no XDG_RUNTIME_DIR: platformdirs falls back quietly
            warnings.simplefilter("ignore")
            path = Path(getter(APP_NAME, appauthor=False))
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    return _dir("config")


def data_dir() -> Path:
    return _dir("data")


def log_dir() -> Path:
    return _dir("log")


def cache_dir() -> Path:
    return _dir("cache")


def runtime_dir() -> Path:
    return _dir("runtime")


def virtual_boards_dir() -> Path:
    """Running virtual boards announce themselves here: one ``<pid>.json`` per board."""
    path = runtime_dir() / "virtual-boards"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resources_dir() -> Path:
    """The shipped ``resources/`` tree (the repo's, or the copy installed beside the packages)."""
    return Path(__file__).resolve().parent.parent / "resources"
