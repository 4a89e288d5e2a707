"""Errors TinyOps raises: each carries what happened and what the user can do about it.

The CLI maps ``InputError`` to exit code 2 (bad usage or input) and every other
``TinyOpsError`` to exit code 1 (the operation failed), ``Cancelled`` to 130. None prints a
traceback.
``device_drivers.errors`` and ``model_tools.errors`` add their specific subclasses; the app
catches these base classes (never class names as strings). :func:`describe` is the one place
that turns any exception into what the user reads (message, hint, exit code).
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """The user cancelled a long job (the CLI exits 130, like an interrupted command)."""

    exit_code = 130

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)


BUG_HINT = "this is a bug in TinyOps; the log file has the details"


@dataclass(frozen=True)
class Described:
    """What to tell the user about an exception (see :func:`describe`)."""

    message: str
    """One line: what happened."""
    hint: str | None
    """What to do about it, when known."""
    exit_code: int
    """The CLI's exit code: 2 bad input, 1 failed, 130 cancelled."""
    cancelled: bool
    """The user stopped it (``Cancelled``, ``KeyboardInterrupt``): not an error to report."""
    expected: bool
    """A failure the user can act on (False: a bug, worth a traceback in the log)."""
    kind: str
    """The exception's class name, for logs only (never matched by callers)."""


def describe(exc: BaseException) -> Described:
    """The one mapping from any exception to message, hint and exit code.

    ``TinyOpsError`` (and anything else carrying ``message``/``hint``/``exit_code``) keeps
    its own; ``Cancelled`` and ``KeyboardInterrupt`` are cancellations (exit 130); an OSError
    on a path is the user's input (exit 2, the path in the message); anything else is a bug
    (exit 1, ``expected`` False, the hint says where the details are). Used by the CLI, the
    model worker and validation records; the GUI can use it the same way.
    """
    kind = type(exc).__name__
    if isinstance(exc, (Cancelled, KeyboardInterrupt)):
        text = getattr(exc, "message", None) if isinstance(exc, Cancelled) else None
        return Described(str(text or "cancelled by the user"), getattr(exc, "hint", None),
                         130, True, True, kind)
    message = getattr(exc, "message", None)
    hint = getattr(exc, "hint", None)
    code = getattr(exc, "exit_code", None)
    if isinstance(message, str) and message:
        return Described(message, hint if isinstance(hint, str) else None,
                         code if isinstance(code, int) else 1, False, True, kind)
    if isinstance(exc, OSError) and (exc.filename or exc.strerror):
        text = exc.strerror or str(exc)
        if exc.filename:
            return Described(f"{text}: {exc.filename}", "check the path: pick another file "
                             "or folder", 2 if isinstance(exc, _PATH_ERRORS) else 1, False,
                             True, kind)
        return Described(text, None, 1, False, True, kind)
    text = f"{kind}: {exc}" if str(exc) else kind
    return Described(text, BUG_HINT, code if isinstance(code, int) else 1, False,
                     isinstance(code, int), kind)


_PATH_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, FileExistsError,
                PermissionError)
