"""The layering rules, checked on every run.

They are written down in ``docs/architecture.md`` (section "Layers") and enforced by the
import-linter contracts in ``pyproject.toml`` (``[tool.importlinter]``); the last test keeps
this reference true.
"""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Importing any of these from the core must fail the build.
_BLOCKER = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'PySide6', 'shiboken6', 'pyqtgraph', 'PyQt5', 'PyQt6'}:
            raise ImportError('Qt is blocked: ' + name)
        return None
sys.meta_path.insert(0, Block())
"""


def _core_modules() -> list[str]:
    names = []
    for pkg in ("tinyops_base", "device_drivers", "model_tools"):
        names.append(pkg)
        for info in pkgutil.walk_packages([str(ROOT / pkg)], prefix=pkg + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


def test_import_linter_contracts_hold() -> None:
    exe = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 4 kept, 0 broken" in result.stdout
    for contract in ("Layers: app above the two cores, the cores above the shared base KEPT",
                     "device_drivers and model_tools never import each other KEPT",
                     "Core packages are Qt-free KEPT"):
        assert contract in result.stdout


def test_every_core_module_imports_with_qt_blocked() -> None:
    modules = _core_modules()
    assert len(modules) >= 4
    code = _BLOCKER + "import importlib\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules
    )
    code += "assert not any(m.split('.')[0] in ('PySide6','pyqtgraph') for m in sys.modules)\n"
    code += "assert 'tensorflow' not in sys.modules, 'TensorFlow must be imported lazily'\n"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]


def test_blocker_really_blocks_qt() -> None:
    """The check above would be worthless if the blocker let Qt through."""
    code = _BLOCKER + "import PySide6\n"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode != 0 and "Qt is blocked" in result.stderr


def test_the_documents_this_module_points_to_exist() -> None:
    import re

    named = re.findall(r"``([\w./-]+\.(?:md|toml))``", __doc__ or "")
    assert named == ["docs/architecture.md", "pyproject.toml"]
    assert "## Layers" in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "[tool.importlinter]" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def test_the_base_imports_nothing_above_it() -> None:
    """``tinyops_base`` sits below both cores: importing all of it loads neither core nor
    app (the layers contract says the same statically; this proves it at run time)."""
    code = ("import importlib, pkgutil, sys, tinyops_base\n"
            "for m in pkgutil.walk_packages(tinyops_base.__path__, 'tinyops_base.'):\n"
            "    importlib.import_module(m.name)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('app', 'device_drivers', 'model_tools', 'PySide6'))\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
