"""Errors model_tools raises: what happened (one line) and what the user can do about it.

Same shape as ``device_drivers.errors`` (which model_tools must not import): ``message``,
``hint`` and an ``exit_code`` the CLI returns (1 the operation failed, 2 bad input).
"""

from __future__ import annotations


class ModelToolsError(Exception):
    """Base class: ``str(err)`` is a one-line cause; ``hint`` is the fix, if one is known."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class ModelInputError(ModelToolsError):
    """Unusable input: a missing, corrupt or unsupported model or data file, a bad option."""

    exit_code = 2


class InvalidModelError(ModelInputError):
    """A ``.tflite`` file failed FlatBuffer / TFLite schema verification."""


class UnsafeModelError(ModelInputError):
    """A Keras model would run code when loaded (Lambda layers, custom objects)."""


class RuntimeUnavailable(ModelToolsError):
    """The tflite-micro runtime (or TensorFlow) is not installed on this machine."""


class Cancelled(ModelToolsError):
    """The user cancelled a long job."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)
