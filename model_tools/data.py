"""Calibration / evaluation data: ``.npz`` (``x``, optional ``y``), ``.npy``, CSV, folders.

- ``.npz``: array ``x`` (or the only array), labels ``y`` optional. ``allow_pickle`` is off.
- ``.npy``: samples only.
- CSV: one sample per row; a column named ``label`` / ``y`` / ``class`` holds labels
  (numbers, or names matched against ``labels``); a header row is optional.
- Folder: ``<folder>/<label>/*.npy|*.csv`` (one sample per file, labels from the sub-folder
  names) or ``<folder>/*.npy|*.csv`` (unlabelled).

Samples are reshaped to the model's input shape (without the batch dimension) when given.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model_tools.errors import ModelInputError

_LABEL_COLUMNS = ("label", "y", "class", "target")
_SAMPLE_SUFFIXES = (".npy", ".csv")


@dataclass
class Dataset:
    x: np.ndarray  # (N, *input_shape) float32
    y: np.ndarray | None  # (N,) int64 class indices, or None
    sha256: str  # of the source bytes (a folder: of its files in sorted order)
    source: str
    label_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.x)


def _hash_files(files: Sequence[Path], root: Path | None = None) -> str:
    h = hashlib.sha256()
    for p in files:
        if root is not None:
            h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes())
    return h.hexdigest()


def _labels_to_index(raw: Sequence[str], labels: Sequence[str] | None, where: str) -> np.ndarray:
    names = list(labels) if labels else None
    out = []
    for value in raw:
        value = value.strip()
        try:
            out.append(int(float(value)))
            continue
        except ValueError:
            pass
        if names is None:
            names = sorted({v.strip() for v in raw if not _is_number(v)})
        if value not in names:
            raise ModelInputError(f"{where}: unknown label {value!r}",
                                  f"use one of {', '.join(names)} or a class number")
        out.append(names.index(value))
    return np.asarray(out, dtype=np.int64)


def _is_number(value: str) -> bool:
    try:
        float(value)
        return True
    except ValueError:
        return False


def _read_csv(text: str, where: str, labels: Sequence[str] | None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise ModelInputError(f"{where} is empty", "put one sample per row")
    header = None
    if not all(_is_number(c) for c in rows[0]):
        header = [c.strip().lower() for c in rows[0]]
        rows = rows[1:]
    label_col = None
    if header:
        for name in _LABEL_COLUMNS:
            if name in header:
                label_col = header.index(name)
                break
    try:
        if label_col is None:
            x = np.asarray([[float(c) for c in r] for r in rows], dtype=np.float32)
            return x, None
        raw_y = [r[label_col] for r in rows]
        x = np.asarray([[float(c) for i, c in enumerate(r) if i != label_col] for r in rows],
                       dtype=np.float32)
    except ValueError as exc:
        raise ModelInputError(f"{where}: not numeric ({exc})",
                              "use numbers only, with an optional 'label' column") from None
    return x, _labels_to_index(raw_y, labels, where)


def _load_sample(path: Path) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        sample: np.ndarray = np.load(path, allow_pickle=False).astype(np.float32)
        return sample
    x, _ = _read_csv(path.read_text(), str(path), None)
    return x


def _load_folder(path: Path, labels: Sequence[str] | None) -> Dataset:
    subdirs = sorted(p for p in path.iterdir() if p.is_dir())
    files: list[Path] = []
    ys: list[int] = []
    names: list[str] | None = None
    if subdirs:
        names = list(labels) if labels else [d.name for d in subdirs]
        for d in subdirs:
            if d.name not in names:
                raise ModelInputError(f"{path}: folder {d.name!r} is not a known label",
                                      f"name the class folders {', '.join(names)}")
            for f in sorted(d.iterdir()):
                if f.suffix.lower() in _SAMPLE_SUFFIXES:
                    files.append(f)
                    ys.append(names.index(d.name))
    else:
        files = sorted(f for f in path.iterdir() if f.suffix.lower() in _SAMPLE_SUFFIXES)
    if not files:
        raise ModelInputError(f"no samples in folder {path}",
                              "put one .npy or .csv file per sample (in class sub-folders)")
    samples = [_load_sample(f) for f in files]
    shapes = {s.shape for s in samples}
    if len(shapes) > 1:
        raise ModelInputError(f"samples in {path} have different shapes: {sorted(shapes)[:3]}",
                              "every sample must have the model's input shape")
    return Dataset(np.stack(samples), np.asarray(ys, np.int64) if subdirs else None,
                   _hash_files(files, path), str(path), names)


def load_dataset(path: str | Path, *, input_shape: Sequence[int] | None = None,
                 labels: Sequence[str] | None = None, require_labels: bool = False) -> Dataset:
    """Read samples (and labels if present); reshape to ``input_shape`` (no batch dim)."""
    path = Path(path)
    if not path.exists():
        raise ModelInputError(f"data not found: {path}", "check the path")
    where = path.name
    if path.is_dir():
        ds = _load_folder(path, labels)
    else:
        raw = path.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        suffix = path.suffix.lower()
        try:
            if suffix == ".npz":
                with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
                    keys = list(npz.keys())
                    if "x" in keys:
                        x = npz["x"]
                    elif len(keys) == 1:
                        x = npz[keys[0]]
                    else:
                        raise ModelInputError(f"{where} has no array named 'x' ({keys})",
                                              "save it with np.savez(f, x=samples, y=labels)")
                    y = npz["y"] if "y" in keys else None
            elif suffix == ".npy":
                x, y = np.load(io.BytesIO(raw), allow_pickle=False), None
            elif suffix in (".csv", ".txt"):
                x, y = _read_csv(raw.decode("utf-8", "replace"), where, labels)
            else:
                raise ModelInputError(f"unsupported data format {suffix or '(none)'}: {where}",
                                      "use .npz (x, y), .npy, .csv or a folder of samples")
        except ModelInputError:
            raise
        except (ValueError, OSError, EOFError) as exc:
            raise ModelInputError(f"cannot read {where}: {exc}",
                                  "save the data with numpy (np.savez) or as CSV") from None
        if x.dtype.kind not in "fiub":
            raise ModelInputError(f"{where}: samples are {x.dtype}, not numbers",
                                  "store numeric arrays")
        if y is not None:
            y = np.asarray(y)
            if y.ndim == 2 and y.shape[1] > 1:  # one-hot
                y = y.argmax(axis=1)
            y = y.reshape(-1).astype(np.int64)
            if len(y) != len(x):
                raise ModelInputError(f"{where}: {len(x)} samples but {len(y)} labels",
                                      "give one label per sample")
        ds = Dataset(np.asarray(x, dtype=np.float32), y, digest, str(path),
                     list(labels) if labels else None)
    if len(ds.x) == 0:
        raise ModelInputError(f"{where} holds no samples", "add samples")
    if require_labels and ds.y is None:
        raise ModelInputError(f"{where} has no labels",
                              "add labels: array 'y' in the .npz, a 'label' CSV column, "
                              "or class sub-folders")
    if input_shape is not None:
        ds.x = _fit_shape(ds.x, tuple(int(d) for d in input_shape), where)
    if not np.all(np.isfinite(ds.x)):
        raise ModelInputError(f"{where} contains NaN or infinite values", "clean the data")
    return ds


def _fit_shape(x: np.ndarray, shape: tuple[int, ...], where: str) -> np.ndarray:
    if x.shape[1:] == shape:
        return x
    want = int(np.prod(shape)) if shape else 1
    have = int(np.prod(x.shape[1:])) if x.ndim > 1 else 1
    if have != want:
        raise ModelInputError(
            f"{where}: samples have shape {x.shape[1:]} but the model expects {shape}",
            "give data shaped like the model input (one sample per row)")
    return x.reshape((len(x), *shape))
