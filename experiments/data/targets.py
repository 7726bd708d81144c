"""Turning the target column into what a network is fitted on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from common.errors import DataError
from experiments.data.columns import as_numeric


def class_indices(
    values: pd.Series, task: str, source: str, label_names: Mapping[Any, str]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Labels encoded to int64 indices 0..K-1 (sorted label order) and the K class names.

    Raises:
        DataError: for missing labels, a single class, or a binary task without 2 classes.
    """
    name = values.name
    missing = int(values.isna().sum())
    if missing:
        raise DataError(f"{source}: target column {name!r} has {missing} missing values")
    codes, uniques = pd.factorize(values, sort=True)
    class_names = tuple(label_names.get(u, _label(u)) for u in uniques)
    check_classes(len(class_names), task, f"{source}: target column {name!r}", class_names)
    return codes.astype(np.int64), class_names


def check_classes(n_classes: int, task: str, what: str, class_names: tuple[str, ...]) -> None:
    """Classification needs 2+ classes, and a binary task exactly 2."""
    shown = ", ".join(class_names[:10]) + (", ..." if n_classes > 10 else "")
    if n_classes < 2:
        raise DataError(f"{what} has a single class ({shown}); classification needs at least 2")
    if task == "binary" and n_classes != 2:
        raise DataError(f"{what} has {n_classes} classes ({shown}); task binary needs exactly 2 "
                        "(use task: multiclass)")


def regression_values(values: pd.Series, source: str) -> np.ndarray:
    """The target as float32.

    Raises:
        DataError: for text or missing values in the target.
    """
    parsed = as_numeric(values, source, f"regression target {values.name!r}")
    missing = int(parsed.isna().sum())
    if missing:
        raise DataError(f"{source}: target column {values.name!r} has {missing} missing values")
    return parsed.to_numpy(dtype=np.float32)


def _label(value: Any) -> str:
    # 1.0 -> "1": inline rows and CSVs with missing values store integer labels as floats.
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
