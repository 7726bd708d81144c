"""Reading a tabular source (sklearn, generated, inline, csv) into one DataFrame, unprocessed."""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from common.errors import DataError
from experiments.data.resolve import resolve_csv
from experiments.spec import DataSpec

SKLEARN_DATASETS = ("iris",)
GENERATED_DATASETS = ("xor",)


@dataclass(frozen=True)
class Table:
    """Raw rows of one data set, before any split or preprocessing.

    Attributes:
        frame: Feature and target columns.
        target: Name of the target column.
        source: The file (or data set) name used in error messages.
        label_names: Names of coded class labels (iris: 0 -> "setosa"); empty if the labels
            are their own names.
    """

    frame: pd.DataFrame
    target: str
    source: str
    label_names: Mapping[Any, str] = field(default_factory=dict)


def read_table(data: DataSpec, data_dir: Path | None) -> Table:
    """The raw table a non-image spec describes."""
    if data.source == "sklearn":
        return _sklearn(data.dataset or "")
    if data.source == "generated":
        return _generated(data.dataset or "")
    if data.source == "inline":
        return _inline(data)
    if data.source == "csv":
        return _csv(data, data_dir)
    raise DataError(f"data.source {data.source!r} is not a table")


def _sklearn(name: str) -> Table:
    if name != "iris":
        raise DataError(f"data.dataset: unknown sklearn data set {name!r}; expected one of "
                        f"{', '.join(SKLEARN_DATASETS)}")
    from sklearn.datasets import load_iris  # bundled with sklearn: no download

    bunch = load_iris(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "species"})
    return Table(frame, "species", "iris", dict(enumerate(str(n) for n in bunch.target_names)))


def _generated(name: str) -> Table:
    if name != "xor":
        raise DataError(f"data.dataset: unknown generated data set {name!r}; expected one of "
                        f"{', '.join(GENERATED_DATASETS)}")
    # The XOR truth table: the smallest problem a network without a hidden layer cannot solve.
    frame = pd.DataFrame(
        {"x0": [0.0, 0.0, 1.0, 1.0], "x1": [0.0, 1.0, 0.0, 1.0], "y": [0, 1, 1, 0]}
    )
    return Table(frame, "y", "xor")


def _inline(data: DataSpec) -> Table:
    width = len(data.columns)
    for number, row in enumerate(data.rows):
        if len(row) != width:
            raise DataError(f"data.rows[{number}] has {len(row)} values, expected {width} "
                            "(one per data.columns)")
    frame = pd.DataFrame([list(row) for row in data.rows], columns=list(data.columns))
    return Table(frame, data.target or "", "data.rows")


def _csv(data: DataSpec, data_dir: Path | None) -> Table:
    path, payload = resolve_csv(data.path or "", data_dir, data.sha256)
    if not payload.strip():
        raise DataError(f"{path}: empty file (no header and no rows)")
    # The C parser is fast and handles one-character separators and r"\s+"; other regexes
    # need the python engine.
    engine = "c" if len(data.sep) == 1 or data.sep == r"\s+" else "python"
    try:
        frame = pd.read_csv(
            io.BytesIO(payload),
            sep=data.sep,
            skiprows=data.skiprows,
            header=None if data.columns else "infer",
            engine=engine,
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: no data after skipping {data.skiprows} lines") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(
            f"{path}: cannot parse as CSV with sep {data.sep!r}: {first_line}"
        ) from None
    if data.columns:
        if frame.shape[1] != len(data.columns):
            raise DataError(f"{path}: data.columns names {len(data.columns)} columns "
                            f"but the file has {frame.shape[1]}")
        frame.columns = list(data.columns)
    else:
        # "a, b" headers would otherwise give a column " b" that no spec can name.
        frame.columns = [str(name).strip() for name in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    return Table(frame, data.target or "", str(path))
