"""The preprocessing a best model carries: fitted again from the spec, it turns raw rows or
images into exactly the arrays the study trained on, and names what does not fit."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from common.errors import InputError
from experiments.data import load_dataset
from experiments.data.preprocess import fit_table
from experiments.data.raw_inputs import RawInputs, fit_raw_inputs, read_input_file
from experiments.data.tables import read_table
from experiments.registry import load_spec


@pytest.mark.parametrize("name", ["titanic", "iris", "boston"])
def test_raw_test_rows_become_the_studys_test_arrays(name: str) -> None:
    spec = load_spec(name)
    inputs = pickle.loads(pickle.dumps(fit_raw_inputs(spec, None)))  # as a saved model holds it
    table = read_table(spec.data, None)
    test = fit_table(table, spec.task, spec.data).test
    rows = table.frame.drop(columns=[table.target]).iloc[test]
    np.testing.assert_array_equal(inputs.transform(rows), load_dataset(spec).x_test)


def test_titanic_takes_its_file_columns_and_ignores_the_dropped_ones() -> None:
    inputs = fit_raw_inputs(load_spec("titanic"), None)
    assert inputs.features == ["Pclass", "Sex", "Age", "Fare", "Embarked"]
    assert ("Name", "string", False) in inputs.schema()
    assert ("Age", "double", True) in inputs.schema()
    assert inputs.example.notna().all().all() and len(inputs.example) == 3
    whole_ages = inputs.example.assign(Age=[20, 30, 40]).drop(columns=["Name", "PassengerId"])
    assert inputs.conform(whole_ages)["Age"].dtype == np.float64


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.drop(columns=["Sex"]), "column 'Sex' is missing"),
    (lambda f: f.assign(Deck="B"), "unknown column 'Deck'"),
    (lambda f: f.assign(Age="old"), "column 'Age' must be numeric but holds 'old'"),
    (lambda f: f.iloc[:0], "no rows"),
])
def test_a_table_that_does_not_fit_names_the_column(change, message: str) -> None:
    inputs = fit_raw_inputs(load_spec("titanic"), None)
    with pytest.raises(InputError, match=message):
        inputs.transform(change(inputs.example))


def _images(scale: str = "divide255") -> RawInputs:
    return RawInputs(kind="images", task="multiclass", class_names=tuple("abcdefghij"),
                     example=np.zeros((1, 28, 28), np.float32), scale=scale)


@pytest.mark.parametrize("shape", [(2, 28, 28), (28, 28), (3, 784)])
def test_images_come_as_28x28_pixels_or_flat_rows(shape: tuple[int, ...]) -> None:
    pixels = np.full(shape, 255, dtype=np.uint8)
    x = _images().transform(pixels)
    assert x.shape[1] == 784 and x.dtype == np.float32 and float(x.max()) == 1.0


@pytest.mark.parametrize(("pixels", "message"), [
    (np.zeros((2, 32, 32)), "must be 28x28 pixels.*got shape 2 x 32 x 32"),
    (np.zeros((2, 28, 28)) + 300, "0-255"),
    (np.array([["a"] * 28] * 28), "must hold numbers"),
])
def test_images_that_do_not_fit_name_the_shape(pixels: np.ndarray, message: str) -> None:
    with pytest.raises(InputError, match=message):
        _images().transform(pixels)


def test_image_files_are_read_from_npy_and_idx(tmp_path: Path) -> None:
    pixels = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28) % 256
    np.save(tmp_path / "x.npy", pixels.astype(np.uint8))
    header = (2051).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (2, 28, 28))
    (tmp_path / "x-idx3-ubyte.gz").write_bytes(gzip.compress(header + pixels.astype(np.uint8)
                                                             .tobytes()))
    for name in ("x.npy", "x-idx3-ubyte.gz"):
        np.testing.assert_array_equal(read_input_file(tmp_path / name, "images"), pixels)
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    with pytest.raises(InputError, match="bad.npy"):
        read_input_file(tmp_path / "bad.npy", "images")
    with pytest.raises(InputError, match="no such file"):
        read_input_file(tmp_path / "none.csv", "table")


def test_a_table_input_reads_as_csv(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a,b\n1,x\n")
    frame = read_input_file(tmp_path / "rows.csv", "table")
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["a", "b"]
