"""What the model side can do on this system, and through which route.

Three optional engines decide it: tflite-micro (wheels for Linux x86-64 only), LiteRT
(``ai-edge-litert``: Windows, Linux x86-64/aarch64, macOS arm64) and TensorFlow (conversion
only; the installers ship without it). Each feature is either available through a named route
or labelled ``not available on this system: <reason>``; the CLI's JSON (``tinyops features``,
``tinyops doctor``, ``analyze``) and the GUI show these same entries, never a silent gap.
Nothing here imports an engine (``find_spec`` only), so asking is cheap.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from model_tools._tflm_process import TFLM_MISSING, tflm_available
from model_tools.host_interpreter import LITERT, host_engine

UNAVAILABLE = "not available on this system"
CONVERT_PYTHON_ENV = "TINYOPS_CONVERT_PYTHON"
"""A Python with TensorFlow and TinyOps (the conversion add-on), used where this one has no
TensorFlow (the installed app)."""
ADDON_HINT = ("install the conversion add-on: python3 -m venv ~/.local/share/tinyops/convert, "
              "then ~/.local/share/tinyops/convert/bin/pip install tinyops-<version>-py3-none-"
              "any.whl (published beside the installer; it brings TensorFlow), or set "
              f"{CONVERT_PYTHON_ENV} to a Python that has TinyOps and TensorFlow")


@dataclass(frozen=True)
class Feature:
    key: str
    title: str
    available: bool
    route: str | None  # how it works here
    reason: str | None = None  # why not (available is False)

    @property
    def label(self) -> str:
        return (self.route or "") if self.available else f"{UNAVAILABLE}: {self.reason}"

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "label": self.label}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def tensorflow_installed() -> bool:
    return _installed("tensorflow")


def convert_addon() -> Path | None:
    """The conversion add-on's Python (``$TINYOPS_CONVERT_PYTHON``, else the default venv
    ``~/.local/share/tinyops/convert``), when it exists."""
    named = os.environ.get(CONVERT_PYTHON_ENV)
    if named:
        return Path(named) if Path(named).is_file() else None
    venv = Path.home() / ".local" / "share" / "tinyops" / "convert"
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    return python if python.is_file() else None


def conversion() -> Feature:
    title = "convert / quantize a Keras model or SavedModel (TensorFlow)"
    if tensorflow_installed():
        return Feature("convert", title, True, "TensorFlow's TFLite converter")
    addon = convert_addon()
    if addon is not None:
        return Feature("convert", title, True, f"the conversion add-on ({addon})")
    return Feature("convert", title, False, None,
                   "TensorFlow is not installed (the installer ships without it: 1.8 GB); "
                   ".tflite models work fully. To convert, " + ADDON_HINT)


def model_features() -> list[Feature]:
    """The model-side features and how each works on this system."""
    tflm = tflm_available()
    host = host_engine()
    host_route = ("LiteRT (ai-edge-litert; TensorFlow Lite's kernels)" if host == LITERT
                  else "TensorFlow's tf.lite interpreter (LiteRT is not installed)")
    no_host = "neither tflite-micro nor LiteRT (ai-edge-litert) is installed"
    out = [Feature("model_info", "load, verify and analyze a .tflite; export C/Arduino/UF2",
                   True, "built in (FlatBuffer reader, no engine)")]
    if tflm:
        out.append(Feature("tflm_verdict", "does TFLM build and run the model (verdict)", True,
                           "tflite-micro, in a sandboxed child process"))
        out.append(Feature("arena_exact", "exact TFLM tensor arena", True,
                           "tflite-micro's recording allocator (measured minimum)"))
    else:
        out.append(Feature("tflm_verdict", "does TFLM build and run the model (verdict)", False,
                           None, f"{TFLM_MISSING}; the report lists the TFLM hazards "
                           "found by reading the model instead (static)"))
        out.append(Feature("arena_exact", "exact TFLM tensor arena", False, None,
                           f"{TFLM_MISSING} and the emulated Cortex-M firmware is not "
                           "installed; the arena shown is a static estimate"))
    if tflm:
        out.append(Feature("evaluate", "float-vs-int8 evaluation (as the device runs it)", True,
                           "tflite-micro (TFLM kernels); LiteRT for models TFLM cannot build"))
    elif host:
        out.append(Feature("evaluate", "float-vs-int8 evaluation (as the device runs it)", True,
                           f"{host_route}: {TFLM_MISSING}"))
    else:
        out.append(Feature("evaluate", "float-vs-int8 evaluation (as the device runs it)",
                           False, None, no_host))
    out.append(Feature("layer_error", "per-layer int8 error (SQNR)", host is not None,
                       host_route if host else None, None if host else no_host))
    out.append(conversion())
    return out


def unavailable(features: list[Feature]) -> dict[str, str]:
    """``{key: "not available on this system: <reason>"}`` for the missing features."""
    return {f.key: f.label for f in features if not f.available}
