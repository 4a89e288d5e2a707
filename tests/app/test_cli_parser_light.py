"""Building the CLI's parser (every ``tinyops`` command, the GUI's start included) loads
no device link, smpclient, numpy, Qt or TensorFlow: those come when a command uses them.
Measured before: ``tinyops --version`` spent 0.76 s importing the link stack."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("smpclient", "smp", "numpy", "PySide6", "tensorflow", "pydantic",
         "device_drivers.link.session", "device_drivers.protocol.runtime")

SCRIPT = """
import json, sys
from app.cli import build_parser
build_parser().parse_args(["info", "--port", "loop://"])
print(json.dumps(sorted(m for m in sys.modules)))
"""


def test_building_the_parser_imports_nothing_heavy() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          check=True, timeout=120)
    loaded = set(json.loads(done.stdout))
    assert "app.cli.device_cmds" in loaded  # the parser really was built
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


GUI_SCRIPT = """
import json, sys
import app.gui.main_window
print(json.dumps(sorted(m for m in sys.modules)))
"""


def test_the_window_module_loads_no_plot_library_and_no_virtual_board() -> None:
    """pyqtgraph (the Fleet page's plot) and the demo's virtual board load when used: the
    window opened in 5.6-6.6 s before, 1.5-3.0 s after, measured in one period here."""
    done = subprocess.run([sys.executable, "-c", GUI_SCRIPT], capture_output=True, text=True,
                          check=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    loaded = set(json.loads(done.stdout))
    assert "app.gui.pages.fleet_page" in loaded
    assert not loaded & {"pyqtgraph", "device_drivers.virtual.board"}
