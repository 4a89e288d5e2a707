"""Load models safely: Keras (``.keras``, ``.h5``), SavedModel directories, ``.tflite``.

A model file must never run code when it is opened. Keras files are scanned *before*
Keras sees them (their JSON config is read straight from the zip / HDF5 attributes) and
refused if they contain ``Lambda`` layers (pickled Python bytecode) or classes from outside
Keras (custom objects); then Keras loads them with ``safe_mode=True`` as a second line.
``.tflite`` files are verified (``verify.py``) before anything reads them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model_tools.errors import (
    InvalidModelError,
    ModelInputError,
    RuntimeUnavailable,
    UnsafeModelError,
)
from model_tools.verify import TfliteModel, verify_tflite

log = logging.getLogger(__name__)

KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
TFLITE_SUFFIXES = (".tflite",)
_CODE_LAYERS = {"Lambda", "TFOpLambda", "SlicingOpLambda"}
_SAFE_MODULE_PREFIXES = ("keras", "tf_keras")


@dataclass
class LoadedModel:
    path: Path
    kind: str  # "keras" | "savedmodel" | "tflite"
    sha256: str
    size: int  # bytes on disk (a SavedModel: all its files)
    tflite: TfliteModel | None = None
    keras_model: Any = None

    @property
    def is_float_source(self) -> bool:
        return self.kind in ("keras", "savedmodel")


def import_tf(purpose: str = "converting a Keras model or SavedModel") -> Any:
    """TensorFlow, only to load or convert a Keras model; where it is missing (the installed
    app ships without it) a ``RuntimeUnavailable`` says what works without it and how to add
    it. Here rather than in ``convert``, which imports this module (no import circle)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf
    except ImportError as exc:
        from model_tools.availability import ADDON_HINT, UNAVAILABLE

        raise RuntimeUnavailable(
            f"{purpose} is {UNAVAILABLE}: TensorFlow is not installed (.tflite models work "
            "without it: analyze, evaluate, export, flash)", ADDON_HINT) from exc
    with contextlib.suppress(Exception):
        tf.get_logger().setLevel(logging.ERROR)
    return tf


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def dir_sha256(path: Path) -> tuple[str, int]:
    """Hash of a directory tree: relative paths and contents, in sorted order."""
    h = hashlib.sha256()
    total = 0
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        rel = p.relative_to(path).as_posix().encode()
        h.update(len(rel).to_bytes(4, "little") + rel)
        h.update(bytes.fromhex(file_sha256(p)))
        total += p.stat().st_size
    return h.hexdigest(), total


def model_kind(path: Path) -> str:
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise ModelInputError(f"{path} is a folder but not a SavedModel (no saved_model.pb)",
                              "pass a .keras, .h5 or .tflite file, or a SavedModel folder")
    suffix = path.suffix.lower()
    if suffix in KERAS_SUFFIXES:
        return "keras"
    if suffix in TFLITE_SUFFIXES:
        return "tflite"
    raise ModelInputError(f"unsupported model file type {suffix or '(none)'}: {path.name}",
                          "pass a .keras, .h5 or .tflite file, or a SavedModel folder")


# -- Keras safety scan --------------------------------------------------------------------------

def _keras_config(path: Path) -> dict[str, Any]:
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as zf:
                config = json.loads(zf.read("config.json"))
        else:
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
                if raw is None:
                    raise ModelInputError(
                        f"{path.name} holds weights only, not a model",
                        "save the whole model (model.save) and pass that file")
                config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except ModelInputError:
        raise
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise InvalidModelError(f"{path.name} is not a readable Keras model: {exc}",
                                "save it again with model.save('model.keras')") from None
    if not isinstance(config, dict):
        raise InvalidModelError(f"{path.name} is not a readable Keras model: its model config "
                                f"is a JSON {type(config).__name__}, not an object",
                                "save it again with model.save('model.keras')")
    return config


def unsafe_reasons(config: Any) -> list[str]:
    """Why a Keras config would run code on load (empty list: safe)."""
    reasons: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            cls = node.get("class_name")
            if isinstance(cls, str):
                module = node.get("module")
                if cls in _CODE_LAYERS:
                    reasons.append(f"a {cls} layer ({node.get('config', {}).get('name', '?')})")
                elif cls == "__lambda__" or (isinstance(module, str) and module
                                             and not module.startswith(_SAFE_MODULE_PREFIXES)):
                    reasons.append(f"custom object {module}.{cls}" if module else cls)
                elif "registered_name" in node and isinstance(node["registered_name"], str) \
                        and "/" in node["registered_name"]:
                    reasons.append(f"custom object {node['registered_name']}")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return reasons


def load_keras(path: Path) -> Any:
    reasons = unsafe_reasons(_keras_config(path))
    if reasons:
        raise UnsafeModelError(
            f"refusing to load {path.name}: it contains {', '.join(sorted(set(reasons))[:3])}, "
            "which would run code from the file",
            "rebuild the model from standard Keras layers, or convert it to .tflite yourself")
    import_tf(f"loading {path.name} (a Keras model)")
    import keras

    try:
        return keras.models.load_model(path, compile=False, safe_mode=True)
    except (ValueError, TypeError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "safe_mode" in text or "Lambda" in text or "custom" in text.lower():
            raise UnsafeModelError(f"refusing to load {path.name}: {text}",
                                   "rebuild the model from standard Keras layers") from None
        raise InvalidModelError(f"cannot load {path.name}: {text}",
                                "save it again with model.save('model.keras')") from None
    except OSError as exc:
        raise InvalidModelError(f"cannot read {path.name}: {exc}",
                                "check that the file is complete") from None


def load_model(path: str | Path, *, load_float: bool = True) -> LoadedModel:
    """Open a model. ``.tflite`` files are verified; Keras files are safety-scanned and loaded
    (only when ``load_float``; TensorFlow is imported then). SavedModels are not loaded here
    (the converter reads them directly)."""
    path = Path(path)
    if not path.exists():
        raise ModelInputError(f"model not found: {path}", "check the path")
    kind = model_kind(path)
    if kind == "savedmodel":
        digest, size = dir_sha256(path)
        return LoadedModel(path, kind, digest, size)
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if kind == "tflite":
        return LoadedModel(path, kind, digest, len(data), tflite=verify_tflite(data))
    model = load_keras(path) if load_float else None
    if model is None and not load_float:
        reasons = unsafe_reasons(_keras_config(path))
        if reasons:
            raise UnsafeModelError(f"refusing to load {path.name}: it contains {reasons[0]}",
                                   "rebuild the model from standard Keras layers")
    return LoadedModel(path, kind, digest, len(data), keras_model=model)


def load_tflite_bytes(data: bytes) -> TfliteModel:
    return verify_tflite(data)
