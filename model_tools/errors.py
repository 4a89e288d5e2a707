"""Errors model_tools raises: what happened (one line) and what the user can do about it.

Every class derives from the shared ``tinyops_base.errors`` hierarchy (``message``, ``hint``,
``exit_code``: 1 the operation failed, 2 bad input), so the app catches ``TinyOpsError`` /
``InputError`` / ``Cancelled`` from either core alike.
"""

from __future__ import annotations

from tinyops_base.errors import Cancelled, InputError, TinyOpsError

__all__ = ["Cancelled", "InvalidModelError", "ModelInputError", "ModelToolsError",
           "RuntimeUnavailable", "UnsafeModelError"]


class ModelToolsError(TinyOpsError):
    """A model operation failed."""


class ModelInputError(ModelToolsError, InputError):
    """Unusable input: a missing, corrupt or unsupported model or data file, a bad option."""

    exit_code = 2


class InvalidModelError(ModelInputError):
    """A ``.tflite`` file failed FlatBuffer / TFLite schema verification."""


class UnsafeModelError(ModelInputError):
    """A Keras model would run code when loaded (Lambda layers, custom objects)."""


class RuntimeUnavailable(ModelToolsError):
    """The tflite-micro runtime (or TensorFlow) is not installed on this machine."""
