"""Errors TinyOps raises: each carries what happened and what the user can do about it.

The CLI maps ``InputError`` to exit code 2 (bad usage or input) and every other
``TinyOpsError`` to exit code 1 (the operation failed). Neither prints a traceback.
``device_drivers.errors`` and ``model_tools.errors`` add their specific subclasses; the app
catches these base classes (never class names as strings).
"""

from __future__ import annotations


class TinyOpsError(Exception):
    """Base class: ``str(err)`` is a one-line cause; ``hint`` is the fix, if one is known."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputError(TinyOpsError):
    """The user gave something unusable: a missing port, a corrupt file, a bad option."""

    exit_code = 2


class Cancelled(TinyOpsError):
    """The user cancelled a long job."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)
