"""argparse types shared by the CLIs: a bad value is a usage error (exit 2), not a traceback."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """A whole number > 0 (``--baud``, ``--limit``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0 (``--timeout``, ``--duration``): ``inf`` and ``nan`` are refused."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value
