"""The flashing back ends, looked up by name and by what an artifact is.

Each back end is one small class in its own module (``smp``, ``uf2``, ``esp``, ``arduino``)
that declares, as class constants, its name, the artifact kinds it takes, how to recognise
them and which kinds only it takes (``base.BackendClass``). The modules are imported on
first use (esptool and friends stay out of the start-up) in :data:`MODULES` order, which is
also the order in which back ends get to recognise an artifact's bytes.

Adding a back end: a module with a ``BackendClass`` subclass decorated with ``@register``,
and its name in :data:`MODULES`.
"""

from __future__ import annotations

import importlib
from typing import Any

from device_drivers.errors import InputError
from device_drivers.flashing.base import KINDS, BackendClass

MODULES = ("smp", "uf2", "esp", "arduino")
"""Back-end modules under ``device_drivers.flashing``, in recognition order."""
DEFAULT = "smp"
"""The back end for a model or a binary when neither the user nor the board names one."""

_REGISTRY: dict[str, type[BackendClass]] = {}


def register(cls: type[BackendClass]) -> type[BackendClass]:
    """Class decorator: make ``cls`` a back end ``flash()`` can choose."""
    unknown = set(cls.kinds) - set(KINDS)
    if unknown or not set(cls.claims) <= set(cls.kinds):
        raise ValueError(f"back end {cls.__name__}: kinds {sorted(unknown)} are unknown, or "
                         "it claims kinds it does not take")
    _REGISTRY[cls.name] = cls
    return cls


def backends() -> list[type[BackendClass]]:
    """Every registered back end, in recognition order: :data:`MODULES` order whatever order
    they were imported in (a back end registered from elsewhere comes after them)."""
    for module in MODULES:
        importlib.import_module(f"device_drivers.flashing.{module}")

    def rank(cls: type[BackendClass]) -> int:
        module = cls.__module__.rpartition(".")[2]
        return MODULES.index(module) if module in MODULES else len(MODULES)

    return sorted(_REGISTRY.values(), key=rank)  # stable: registration order within a rank


def names() -> tuple[str, ...]:
    return tuple(cls.name for cls in backends())


def backend_class(name: str) -> type[BackendClass]:
    """The back end called ``name`` (or one of its aliases); InputError if none is."""
    for cls in backends():
        if name == cls.name or name in cls.aliases:
            return cls
    raise InputError(f"unknown back end {name!r}", f"use one of: {', '.join(names())}")


def get_backend(name: str, **kwargs: Any) -> BackendClass:
    """An instance of the back end called ``name``; ``kwargs`` go to its constructor
    (e.g. ``session=`` for smp: flash through a session that is already open)."""
    return backend_class(name)(**kwargs)


def recognise_kind(data: bytes, name: str = "") -> str:
    """The first kind a back end recognises in ``data`` (``binary`` if none does)."""
    for cls in backends():
        for kind, recognise in cls.kinds.items():
            if recognise is not None and recognise(data, name):
                return kind
    return "binary"


def choose_backend(artifact: Any, board: Any | None = None,
                   explicit: str | None = None) -> str:
    """The back end for ``artifact``: explicit, else the one that claims its kind, else the
    board's, else :data:`DEFAULT`."""
    if explicit:
        return backend_class(explicit).name
    for cls in backends():
        if artifact.kind in cls.claims:
            return cls.name
    wanted = getattr(board, "backend", None)
    if isinstance(wanted, str):
        for cls in backends():
            if wanted == cls.name or wanted in cls.aliases:
                return cls.name
    return DEFAULT
