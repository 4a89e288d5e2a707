"""The one reading of ``CI`` for the tests: what may skip locally must fail in CI.

``CI`` counts as set when it is ``1``, ``true`` or ``yes`` (any case), as GitHub Actions,
GitLab and ``.ci/run`` set it. A test whose tool is missing calls :func:`unavailable`: it
skips on a developer's machine (with how to install the tool) and fails in CI, where the
tool must be there. Hard dependencies (PySide6, numpy, our own packages) are imported
plainly, never skipped: a broken install fails.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def unavailable(reason: str) -> NoReturn:
    """Skip locally, fail in CI: ``reason`` says what is missing and how to get it."""
    if in_ci():
        pytest.fail(f"{reason} (CI must provide it: see .ci/run)", pytrace=False)
    pytest.skip(reason)
