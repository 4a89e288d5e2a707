"""The host's TensorFlow Lite interpreter: LiteRT (``ai-edge-litert``), no TensorFlow.

Everything that runs a ``.tflite`` on the host outside tflite-micro (the float-vs-int8
evaluation where TFLM cannot build the model or is not installed, the per-layer error) builds
its interpreter here. LiteRT has wheels for Windows, Linux x86-64/aarch64 and macOS arm64,
imports in well under a second and runs the same kernels as ``tf.lite.Interpreter``; only
where LiteRT is missing is TensorFlow's interpreter used (TensorFlow is otherwise loaded only
to convert a Keras model or SavedModel: :mod:`model_tools.convert`).
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

from model_tools.errors import RuntimeUnavailable

LITERT = "litert"
TF_LITE = "tf.lite"


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package that fails to import, or is blocked
        return False


def host_engine() -> str | None:
    """The interpreter :func:`make_interpreter` would use (``"litert"``, ``"tf.lite"``), or
    None when neither LiteRT nor TensorFlow is installed."""
    if _installed("ai_edge_litert"):
        return LITERT
    if _installed("tensorflow"):
        return TF_LITE
    return None


def make_interpreter(data: bytes, *, preserve_all_tensors: bool = False) -> tuple[Any, str]:
    """An unallocated interpreter for the model ``data`` and the engine's name."""
    engine = host_engine()
    if engine == LITERT:
        from ai_edge_litert.interpreter import Interpreter

        with warnings.catch_warnings():  # "preserve_all_tensors is for debugging": it is
            warnings.simplefilter("ignore")
            return Interpreter(model_content=data,
                               experimental_preserve_all_tensors=preserve_all_tensors), engine
    if engine == TF_LITE:
        from model_tools.convert import import_tf

        tf = import_tf()
        with warnings.catch_warnings():  # deprecated in favour of LiteRT
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_content=data,
                                       experimental_preserve_all_tensors=preserve_all_tensors
                                       ), engine
    raise RuntimeUnavailable(
        "no TensorFlow Lite interpreter on this system (LiteRT is not installed)",
        "install the ai-edge-litert package (pip install ai-edge-litert)")
