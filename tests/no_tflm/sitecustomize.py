"""Makes ``tflite_micro`` (or ``$TINYOPS_BLOCKED_MODULES``) unimportable, as on a system
without its wheel (Windows, macOS, Linux on Arm). Installed by ``tests/conftest.py`` when
``TINYOPS_BLOCK_TFLM=1``: in the test process directly, and in every child Python through
``PYTHONPATH`` (this file is then the child's ``sitecustomize``)."""

from __future__ import annotations

import os
import sys
from typing import Any

BLOCKED = tuple(m for m in os.environ.get("TINYOPS_BLOCKED_MODULES", "tflite_micro").split(",")
                if m)
"""``tflite_micro`` unless ``TINYOPS_BLOCKED_MODULES`` names others (``tensorflow,keras``:
a system without TensorFlow, as the installed app)."""


def _blocked(name: str) -> bool:
    return any(name == b or name.startswith(b + ".") for b in BLOCKED)


class BlockTflm:
    """A meta path finder that refuses ``tflite_micro`` and its submodules."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> None:
        if _blocked(name):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by tests/no_tflm)",
                                      name=name)
        return None


def install() -> None:
    if not any(isinstance(f, BlockTflm) for f in sys.meta_path):
        sys.meta_path.insert(0, BlockTflm())
    for name in [m for m in sys.modules if _blocked(m)]:
        del sys.modules[name]


install()
