"""Checking a table's columns against the spec and parsing the numeric ones."""

from __future__ import annotations

import numpy as np
import pandas as pd

from common.errors import DataError
from common.text import shown
from experiments.data.tables import Table


def feature_columns(
    table: Table, drop: tuple[str, ...], categorical: tuple[str, ...]
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The feature frame and its numeric and categorical column names, in file order.

    Numeric columns are parsed to float; text in one of them is an error, not a silent NaN.

    Raises:
        DataError: naming the file and column for a missing target / drop / categorical
            column or for a numeric column holding text.
    """
    frame, source = table.frame, table.source
    available = ", ".join(map(str, frame.columns))
    if table.target not in frame.columns:
        raise DataError(f"{source}: target column {table.target!r} not found; "
                        f"available: {available}")
    for field, names in (("data.drop", drop), ("data.categorical", categorical)):
        for name in names:
            if name not in frame.columns:
                raise DataError(f"{source}: {field} column {name!r} not found; "
                                f"available: {available}")
            if name == table.target:
                raise DataError(f"{source}: {field} lists the target column {name!r}")
    features = [c for c in frame.columns if c != table.target and c not in drop]
    if not features:
        raise DataError(f"{source}: no feature columns left after dropping {', '.join(drop)}")
    numeric = [c for c in features if c not in categorical]
    categorical_cols = [c for c in features if c in categorical]
    parsed = frame[features].copy()
    for name in numeric:
        parsed[name] = as_numeric(frame[name], source, f"column {name!r}",
                                  hint="; list it in data.categorical or data.drop")
        if parsed[name].isna().all():  # the imputer would drop it with only a library warning
            raise DataError(f"{source}: column {name!r} has no values at all; list it in "
                            "data.drop")
    return parsed, numeric, categorical_cols


def as_numeric(values: pd.Series, source: str, what: str, hint: str = "") -> pd.Series:
    """`values` as float64 (missing values stay NaN for the imputer).

    Raises:
        DataError: naming `what` and the first value that is not a number.
    """
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        parsed = values.astype("float64")
    else:
        parsed = pd.to_numeric(values, errors="coerce").astype("float64")
        bad = (parsed.isna() & values.notna()).to_numpy()
        if bad.any():
            row = int(bad.argmax())
            raise DataError(f"{source}: {what} must be numeric but holds "
                            f"{shown(values.iloc[row])} (data row {row + 1}){hint}")
    infinite = np.isinf(parsed.to_numpy())
    if infinite.any():  # every trial would end "diverged", blaming the network
        row = int(infinite.argmax())
        raise DataError(f"{source}: {what} holds an infinite value (data row {row + 1}); fix "
                        "or drop that row")
    return parsed
