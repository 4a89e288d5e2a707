"""The layering rules, checked on every run.

They are written down in ``README.md`` (section "Layout") and enforced by the import-linter
contracts in ``pyproject.toml`` (``[tool.importlinter]``); the last test keeps this reference
true.
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
    for pkg in ("device_drivers", "model_tools"):
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
    assert "Contracts: 2 kept, 0 broken" in result.stdout


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
    assert named == ["README.md", "pyproject.toml"]
    assert "## Layout" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "[tool.importlinter]" in (ROOT / "pyproject.toml").read_text(encoding="utf-8")
