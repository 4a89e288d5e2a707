"""The flashing back ends, looked up by name, by what an artifact is and by the board.

Each back end is one small class in its own module (``smp``, ``uf2``, ``esp``, ``arduino``)
that declares, as class constants, its name, the artifact kinds it takes, how to recognise
them and which kinds only it takes (``base.BackendClass``), and registers itself with
``base.register``. The table and the recognition order (:data:`MODULES`, also the order in
which back ends get to recognise an artifact's bytes) live in :mod:`.base`, which artifacts
need to sniff their kind; this module chooses among them and imports ``base`` (never the
reverse: no import circle).

Adding a back end: a module with a ``BackendClass`` subclass decorated with ``@register``,
and its name in :data:`MODULES`.
"""

from __future__ import annotations

from typing import Any

from device_drivers.errors import InputError
from device_drivers.flashing.base import MODULES, BackendClass, backends, register, sniff_kind

__all__ = ["DEFAULT", "MODULES", "backend_class", "backends", "choose_backend", "get_backend",
           "names", "recognise_kind", "register"]

DEFAULT = "smp"
"""The back end for a model or a binary when neither the user nor the board names one."""

recognise_kind = sniff_kind
"""The first kind a back end recognises in ``data`` (``binary`` if none does)."""


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
