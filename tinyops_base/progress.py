"""Progress reports and cancellation for long jobs (quantize, flash, upload, validate).

A job is a plain function that takes ``progress(fraction, message)`` and a cancel token and
checks the token between blocks; ``app/`` turns the callbacks into Qt signals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from tinyops_base.errors import Cancelled

Progress = Callable[[float, str], None]
"""``progress(fraction, message)``: fraction in [0, 1] of the whole job."""


class CancelToken(Protocol):
    """Anything with ``is_set()``: ``threading.Event`` is one."""

    def is_set(self) -> bool: ...


def null_progress(fraction: float, message: str) -> None:
    return None


def sub_progress(progress: Progress, start: float, end: float) -> Progress:
    """Map a step's 0..1 progress into [start, end] of the whole operation (clamped)."""
    def report(fraction: float, message: str) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        progress(start + (end - start) * fraction, message)
    return report


def check_cancel(cancel: CancelToken | None, what: str = "the job") -> None:
    """Raise :class:`Cancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"{what} cancelled by the user")
