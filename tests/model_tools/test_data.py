"""Calibration / evaluation data formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from model_tools.data import load_dataset
from model_tools.errors import ModelInputError


def test_npz_with_labels_and_reshape(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    np.savez(tmp_path / "d.npz", x=x, y=np.eye(3)[[0, 1, 2, 1]])  # one-hot labels
    ds = load_dataset(tmp_path / "d.npz", input_shape=(2, 3))
    assert ds.x.shape == (4, 2, 3) and ds.y.tolist() == [0, 1, 2, 1]
    assert np.array_equal(ds.x.reshape(4, 6), x)


def test_npy_and_shape_mismatch(tmp_path: Path) -> None:
    np.save(tmp_path / "d.npy", np.zeros((3, 5), np.float32))
    assert load_dataset(tmp_path / "d.npy").y is None
    with pytest.raises(ModelInputError, match="expects"):
        load_dataset(tmp_path / "d.npy", input_shape=(4,))


def test_csv_with_named_labels(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n")
    ds = load_dataset(tmp_path / "d.csv", labels=["dog", "cat"])
    assert ds.x.tolist() == [[1, 2], [3, 4], [5, 6]] and ds.y.tolist() == [1, 0, 1]


def test_folder_of_class_subfolders(tmp_path: Path) -> None:
    for label, value in (("normal", 0.0), ("fault", 1.0)):
        (tmp_path / label).mkdir()
        for i in range(3):
            np.save(tmp_path / label / f"{i}.npy", np.full((2, 2), value + i, np.float32))
    ds = load_dataset(tmp_path, labels=["normal", "fault"])
    assert ds.x.shape == (6, 2, 2)
    assert ds.y.tolist() == [1, 1, 1, 0, 0, 0]  # sorted folders: fault first, mapped by label
    assert np.all(ds.x[ds.y == 1][:, 0, 0] >= 1.0)


def test_errors_are_input_errors(tmp_path: Path) -> None:
    np.savez(tmp_path / "nolabels.npz", x=np.zeros((2, 2)))
    with pytest.raises(ModelInputError, match="no labels"):
        load_dataset(tmp_path / "nolabels.npz", require_labels=True)
    (tmp_path / "bad.csv").write_text("1,2\n3,x\n")
    with pytest.raises(ModelInputError):
        load_dataset(tmp_path / "bad.csv")
    (tmp_path / "d.bin").write_bytes(b"123")
    with pytest.raises(ModelInputError, match="unsupported"):
        load_dataset(tmp_path / "d.bin")
    np.save(tmp_path / "nan.npy", np.array([[np.nan]]))
    with pytest.raises(ModelInputError, match="NaN"):
        load_dataset(tmp_path / "nan.npy")
    (tmp_path / "pickled.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(ModelInputError):
        load_dataset(tmp_path / "pickled.npy")


@settings(max_examples=50, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 5)),
              elements=st.floats(-1e6, 1e6, width=32)),
       st.booleans())
def test_csv_round_trip(tmp_path_factory, x: np.ndarray, header: bool) -> None:
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    lines = [",".join(f"c{i}" for i in range(x.shape[1]))] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in x]
    path.write_text("\n".join(lines) + "\n")
    ds = load_dataset(path)
    assert ds.y is None and np.array_equal(ds.x, x)
